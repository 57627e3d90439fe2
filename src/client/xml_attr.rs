//! Escaping for the double-quoted attribute values of every `tsRequest` body the client sends.
//!
//! Tableau's publish endpoint is reported to reject the named entity `&apos;` in attribute
//! values with a 400 (a comment in Tableau's own client; the error code is unconfirmed), and
//! quick-xml's `escape` writes exactly that for `'`. So this module writes only `&amp;`, `&lt;`,
//! `&gt;`, `&quot;` and numeric character references, and leaves `'` as it is (inside double
//! quotes it needs no escaping).

use crate::error::{Error, Result};

/// Escapes `value` for use between double quotes in an XML attribute.
///
/// `&` → `&amp;`, `<` → `&lt;`, `>` → `&gt;`, `"` → `&quot;`; `'` and all other characters
/// (non-ASCII and emoji included) are written as they are. Tab, newline and carriage return
/// become `&#9;`, `&#10;` and `&#13;`, because a parser normalises a literal one in an attribute
/// value to a space. Characters XML 1.0 cannot carry at all (the other C0 controls, U+FFFE,
/// U+FFFF) give a [`Config`](crate::ErrorKind::Config) error naming `field` (the setting the
/// value came from) and the character's code point, never the value, which may be a secret.
pub fn escape(field: &str, value: &str) -> Result<String> {
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => {
                return Err(Error::config(format!(
                    "{field} contains the character U+{:04X} (character {}), which XML 1.0 cannot carry, so it cannot be sent to Tableau; remove it",
                    c as u32,
                    i + 1
                )))
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::escape;
    use crate::ErrorKind;

    fn esc(v: &str) -> String {
        escape("\"datasource_name\"", v).unwrap()
    }

    #[test]
    fn markup_characters_are_escaped_and_apostrophes_are_not() {
        assert_eq!(esc("O'Brien's Sales"), "O'Brien's Sales");
        assert_eq!(esc(r#"Say "hi""#), "Say &quot;hi&quot;");
        assert_eq!(esc("R&D <beta> >"), "R&amp;D &lt;beta&gt; &gt;");
        assert_eq!(
            esc("&amp;"),
            "&amp;amp;",
            "already-escaped text is escaped again"
        );
        assert_eq!(esc(""), "");
        assert!(!esc(r#"'"&<>'"#).contains("&apos;"));
    }

    #[test]
    fn non_ascii_and_emoji_pass_through() {
        for v in [
            "Café Zürich 数据",
            "📊 Quarterly 🚀",
            "\u{7f}\u{85}\u{a0}\u{fffd}",
        ] {
            assert_eq!(esc(v), v);
        }
    }

    #[test]
    fn whitespace_controls_become_character_references() {
        assert_eq!(esc("a\tb\nc\r\nd"), "a&#9;b&#10;c&#13;&#10;d");
    }

    #[test]
    fn controls_xml_cannot_carry_are_a_config_error_naming_the_field() {
        for (v, code, at) in [
            ("\0", "U+0000", 1),
            ("ab\u{1}", "U+0001", 3),
            ("x\u{1b}[0m", "U+001B", 2),
            ("\u{b}", "U+000B", 1),
            ("é\u{ffff}", "U+FFFF", 2),
            ("\u{fffe}", "U+FFFE", 1),
            ("hunter2\u{7}", "U+0007", 8),
        ] {
            let err = escape("the PAT secret (auth.token_secret)", v).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{v:?}");
            let msg = err.message();
            assert!(
                msg.starts_with("the PAT secret (auth.token_secret) contains"),
                "{msg}"
            );
            assert!(msg.contains(code), "{msg}");
            assert!(msg.contains(&format!("(character {at})")), "{msg}");
            assert!(
                !msg.contains("hunter2"),
                "the value itself is never shown: {msg}"
            );
        }
    }

    #[test]
    fn the_output_parses_back_to_the_input() {
        let inputs = [
            "O'Brien's Sales",
            r#"Say "hi""#,
            "R&D <beta> >",
            "Café Zürich 数据",
            "📊 Quarterly 🚀",
            "tab\there\nnew\r\nline ' \" & < >",
        ];
        for v in inputs {
            let doc = format!("<a v=\"{}\"/>", esc(v));
            let mut reader = quick_xml::Reader::from_str(&doc);
            let quick_xml::events::Event::Empty(e) = reader.read_event().unwrap() else {
                panic!("{doc}");
            };
            let attr = e.try_get_attribute("v").unwrap().unwrap();
            assert_eq!(attr.unescape_value().unwrap(), v, "{doc}");
            // A conforming parser turns a literal tab, newline or CR in a value into a space.
            assert!(!doc.contains(['\t', '\n', '\r']), "{doc:?}");
        }
    }
}
