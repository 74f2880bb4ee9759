//! Ready-made views for the joins people write first, with one SQL text that DataFusion
//! (`scenes query`) and Trino/Athena (`scenes catalog`) both run:
//! - `scene_bags`: each scene with its bag's record (name, source, size, times, status);
//! - `scene_timeline`: each scene with its window of the `synced` timeline, one row per tick
//!   from the scene's start to its end (exact nanoseconds), every synced column.

use datafusion::prelude::SessionContext;

use crate::error::{Error, Result};

/// A view: its name, its columns and the join they come from. Its SQL is made from these, so
/// the columns a catalog declares for it are the ones the SQL selects.
#[derive(Debug, Clone, Copy)]
pub struct View {
    pub name: &'static str,
    pub columns: &'static [ViewColumn],
    /// The tables it reads, each with its alias in the SQL.
    pub tables: &'static [(&'static str, &'static str)],
    /// The join condition (in the aliases' terms).
    pub join_on: &'static str,
}

/// Columns of a view: every column of a table, or one column under a name.
#[derive(Debug, Clone, Copy)]
pub enum ViewColumn {
    AllOf(&'static str),
    One { table: &'static str, column: &'static str, name: &'static str },
}

const fn bag(column: &'static str, name: &'static str) -> ViewColumn {
    ViewColumn::One { table: "bags", column, name }
}

/// Every ready-made view.
pub const VIEWS: [View; 2] = [
    View {
        name: "scene_bags",
        columns: &[
            ViewColumn::AllOf("scenes"),
            bag("bag_name", "bag_name"),
            bag("source_uri", "source_uri"),
            bag("status", "bag_status"),
            bag("size_bytes", "bag_size_bytes"),
            bag("message_count", "bag_message_count"),
            bag("start_time_ns", "bag_start_time_ns"),
            bag("end_time_ns", "bag_end_time_ns"),
            bag("ingested_at", "bag_ingested_at"),
        ],
        tables: &[("scenes", "s"), ("bags", "b")],
        join_on: "b.bag_file = s.bag_file",
    },
    View {
        name: "scene_timeline",
        columns: &[ViewColumn::One { table: "scenes", column: "scene_id", name: "scene_id" }, ViewColumn::AllOf("synced")],
        tables: &[("scenes", "s"), ("synced", "y")],
        join_on: "y.bag_file = s.bag_file AND y.tick_ns BETWEEN s.start_ts_ns AND COALESCE(s.end_ts_ns, s.start_ts_ns)",
    },
];

impl View {
    /// The SQL of the view, which DataFusion and Trino both run.
    pub fn sql(&self) -> String {
        let alias = |table: &'static str| -> &'static str { self.tables.iter().find(|(t, _)| *t == table).map_or(table, |(_, a)| *a) };
        let columns: Vec<String> = self
            .columns
            .iter()
            .map(|c| match c {
                ViewColumn::AllOf(table) => format!("{}.*", alias(table)),
                ViewColumn::One { table, column, name } if column == name => format!("{}.{column}", alias(table)),
                ViewColumn::One { table, column, name } => format!("{}.{column} AS {name}", alias(table)),
            })
            .collect();
        let from: Vec<String> = self.tables.iter().map(|(t, a)| format!("{t} {a}")).collect();
        format!("SELECT {} FROM {} ON {}", columns.join(", "), from.join(" JOIN "), self.join_on)
    }

    /// The tables it reads.
    pub fn reads(&self) -> Vec<&'static str> {
        self.tables.iter().map(|(t, _)| *t).collect()
    }
}

/// Registers the views that `sql` names (and are not registered yet), so that a statement
/// that names none of them does not open the tables they read.
pub async fn register_named(ctx: &SessionContext, sql: &str) -> Result<()> {
    let lower = sql.to_ascii_lowercase();
    for view in VIEWS.iter().filter(|v| names_word(&lower, v.name)) {
        if ctx.table_exist(view.name).unwrap_or(false) {
            continue;
        }
        let create = format!("CREATE VIEW {} AS {}", view.name, view.sql());
        let created = match ctx.sql(&create).await {
            Ok(df) => df.collect().await.map(|_| ()),
            Err(e) => Err(e),
        };
        created.map_err(|e| Error::Sql {
            context: "",
            reason: format!(
                "view {} reads {} (made by `scenes batch`): {}",
                view.name,
                view.reads().join(" and "),
                e.to_string().lines().next().unwrap_or("").trim()
            ),
        })?;
    }
    Ok(())
}

/// Whether `text` holds `word` delimited by non-identifier characters.
fn names_word(text: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back().is_none_or(|c| !is_ident(c));
        let after = text[i + word.len()..].chars().next().is_none_or(|c| !is_ident(c));
        before && after
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_sql_selects_its_columns_from_its_join() {
        assert_eq!(
            VIEWS[1].sql(),
            "SELECT s.scene_id, y.* FROM scenes s JOIN synced y ON y.bag_file = s.bag_file AND y.tick_ns BETWEEN s.start_ts_ns AND COALESCE(s.end_ts_ns, s.start_ts_ns)"
        );
        assert!(VIEWS[0].sql().starts_with("SELECT s.*, b.bag_name, b.source_uri, b.status AS bag_status,"));
    }

    #[test]
    fn a_view_is_named_as_a_whole_word() {
        assert!(names_word("select * from scene_bags where x", "scene_bags"));
        assert!(names_word("select count(*) from scene_bags", "scene_bags"));
        assert!(!names_word("select * from my_scene_bags_copy", "scene_bags"));
        assert!(!names_word("select * from scenes", "scene_bags"));
    }
}
