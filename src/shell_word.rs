//! Paths in commands a user copies into a shell (`tabpub resume …`).

use std::path::Path;

/// `path` as one word of a command line: as it is when it holds only letters, digits and
/// `_-./\:+=@%,`; otherwise quoted for the platform's shell (`"…"` for cmd and PowerShell on
/// Windows, where paths cannot hold `"`; `'…'` elsewhere, with `'` written `'\''`).
pub fn shell_word(path: &Path) -> String {
    let text = path.display().to_string();
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_alphanumeric() || "_-./\\:+=@%,".contains(c));
    if plain {
        text
    } else if cfg!(windows) {
        format!("\"{text}\"")
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_stay_plain_and_others_are_quoted() {
        assert_eq!(
            shell_word(Path::new("/tmp/données/a.json")),
            "/tmp/données/a.json"
        );
        let spaced = shell_word(Path::new("/tmp/spool dir/a.json"));
        let quoted_apostrophe = shell_word(Path::new("/tmp/it's/a.json"));
        if cfg!(windows) {
            assert_eq!(spaced, "\"/tmp/spool dir/a.json\"");
        } else {
            assert_eq!(spaced, "'/tmp/spool dir/a.json'");
            assert_eq!(quoted_apostrophe, r"'/tmp/it'\''s/a.json'");
        }
    }
}
