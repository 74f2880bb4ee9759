"""Checks the report page (`scenes report`): it parses as HTML, loads nothing from the network
(no scripts, stylesheets, fonts or images from elsewhere), every file it references exists beside
it, and it has one section per bag (with a timeline chart) and one card per scene. Prints a
JSON summary; exits 1 naming the first problem.

usage: check_report.py REPORT_DIR
"""
import json
import sys
from html.parser import HTMLParser
from pathlib import Path


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.sections, self.cards, self.charts, self.frames, self.boxes, self.lanes, self.spans = [], 0, 0, 0, 0, 0, 0, 0
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "script" or tag == "link" or tag == "iframe":
            self.scripts += 1
        for attr in ("src", "href"):
            if a.get(attr):
                self.refs.append((tag, a[attr]))
        self.sections += tag == "section" and "bag" in classes
        self.cards += tag == "article" and "card" in classes
        self.charts += tag == "svg" and "chart" in classes
        self.frames += tag == "img"
        self.boxes += tag == "rect" and "box" in classes
        self.lanes += tag == "polyline" and "lane" in classes
        self.spans += tag == "rect" and "scene-span" in classes


def main():
    out = Path(sys.argv[1])
    text = (out / "index.html").read_text()
    page = Page()
    page.feed(text)
    problems = []
    if page.scripts:
        problems.append("the page has script, link or iframe elements")
    for tag, ref in page.refs:
        if tag == "a" and ref.startswith(("https://", "http://")):
            continue  # replay links open a viewer on purpose
        if "://" in ref or ref.startswith("//"):
            problems.append(f"{tag} loads {ref} from the network")
        elif not (out / ref).is_file():
            problems.append(f"{tag} references {ref}, which is not there")
    summary = {k: getattr(page, k) for k in ("sections", "charts", "cards", "frames", "boxes", "lanes", "spans")}
    summary["references"] = len(page.refs)
    summary["problems"] = problems
    print(json.dumps(summary))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
