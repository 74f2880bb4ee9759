//! Where a written clip goes (a local directory, or an `s3://` prefix), its time-limited HTTPS
//! URL (`--presign`), and the viewer link made from `detect.replay_url`.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::source::S3Config;

/// Moves the staged clip to `out/<file_name>` (or uploads it to `<out>/<file_name>` on S3);
/// returns where it is.
pub fn place(staged: tempfile::NamedTempFile, out: &str, file_name: &str, s3: &S3Config, runtime: &tokio::runtime::Runtime) -> Result<String> {
    if out.starts_with("s3://") {
        let uri = format!("{}/{file_name}", out.trim_end_matches('/'));
        let bytes = std::fs::read(staged.path()).map_err(|e| Error::io(staged.path(), e))?;
        upload(&uri, bytes, s3, runtime)?;
        return Ok(uri);
    }
    let path = PathBuf::from(out).join(file_name);
    let file = staged.persist(&path).map_err(|e| Error::io(&path, e.error))?;
    // A temporary file is private to its owner; a clip is an ordinary file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(|e| Error::io(&path, e))?;
    }
    drop(file);
    Ok(path.display().to_string())
}

#[cfg(feature = "aws")]
fn upload(uri: &str, bytes: Vec<u8>, s3: &S3Config, runtime: &tokio::runtime::Runtime) -> Result<()> {
    Ok(crate::source::s3::put(uri, bytes, s3, runtime.handle())?)
}

#[cfg(not(feature = "aws"))]
fn upload(uri: &str, _bytes: Vec<u8>, _s3: &S3Config, _runtime: &tokio::runtime::Runtime) -> Result<()> {
    Err(crate::source::inputs::InputError::NoS3Support { input: uri.to_string() }.into())
}

/// A time-limited HTTPS URL of the clip at `location` (on S3 only).
pub fn presign(location: &str, expires: std::time::Duration, s3: &S3Config, runtime: &tokio::runtime::Runtime) -> Result<String> {
    if !location.starts_with("s3://") {
        return Err(Error::invalid("--presign", format!("{location} is a local file: write the clips to S3 (--out s3://bucket/prefix/) to get URLs")));
    }
    sign(location, expires, s3, runtime)
}

#[cfg(feature = "aws")]
fn sign(location: &str, expires: std::time::Duration, s3: &S3Config, runtime: &tokio::runtime::Runtime) -> Result<String> {
    Ok(crate::source::s3::presign_get(location, expires, s3, runtime.handle())?)
}

#[cfg(not(feature = "aws"))]
fn sign(location: &str, _expires: std::time::Duration, _s3: &S3Config, _runtime: &tokio::runtime::Runtime) -> Result<String> {
    Err(crate::source::inputs::InputError::NoS3Support { input: location.to_string() }.into())
}

/// `template` with `{url}` (the clip's URL, percent-encoded for a query string), `{start_iso}`
/// and `{end_iso}` (the window, RFC 3339 UTC) filled in.
pub fn replay_link(template: &str, url: &str, from_ns: u64, to_ns: u64) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(url.as_bytes()).collect();
    template.replace("{url}", &encoded).replace("{start_iso}", &super::iso(from_ns)).replace("{end_iso}", &super::iso(to_ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replay_link_fills_the_template() {
        let link = replay_link(
            "https://app.foxglove.dev/?ds=remote-file&ds.url={url}&time={start_iso}",
            "https://b.s3.amazonaws.com/c/x.mcap?X-Amz-Signature=ab&X-Amz-Expires=60",
            1_700_000_000_500_000_000,
            1_700_000_003_000_000_000,
        );
        assert_eq!(
            link,
            "https://app.foxglove.dev/?ds=remote-file&ds.url=https%3A%2F%2Fb.s3.amazonaws.com%2Fc%2Fx.mcap%3FX-Amz-Signature%3Dab%26X-Amz-Expires%3D60&time=2023-11-14T22:13:20.500Z"
        );
    }
}
