//! Paths in the platform's own form, as users see them in messages and manifests.

use std::path::PathBuf;

/// `path` with the platform's separator: on Windows every `/` becomes `\` (Windows takes both,
/// but a path shown half one way and half the other confuses whoever copies it), except in
/// verbatim paths (`\\?\…`), where `/` is an ordinary character. Elsewhere `path` as it is.
pub fn native(path: PathBuf) -> PathBuf {
    #[cfg(windows)]
    {
        let text = path.as_os_str().to_string_lossy();
        if text.contains('/') && !text.starts_with(r"\\?\") && path.to_str().is_some() {
            return PathBuf::from(text.replace('/', "\\"));
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_are_the_platforms() {
        let mixed = PathBuf::from("C:/Users/ana/spool dir/données");
        #[cfg(windows)]
        {
            assert_eq!(
                native(mixed),
                PathBuf::from(r"C:\Users\ana\spool dir\données")
            );
            let verbatim = PathBuf::from(r"\\?\C:\a/b");
            assert_eq!(
                native(verbatim.clone()),
                verbatim,
                "verbatim paths are left alone"
            );
        }
        #[cfg(not(windows))]
        assert_eq!(
            native(mixed.clone()),
            mixed,
            "a / is the separator here; a \\ is a character"
        );
    }
}
