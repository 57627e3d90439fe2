//! Parsing Tableau's XML responses into small typed values.
//!
//! Element and attribute names are matched by local name, so the `http://tableau.com/api`
//! namespace (and the older `tableausoftware.com` one) are both accepted.
//!
//! The answers come from whatever sits at `server_url`: a Tableau server, but also a proxy, a
//! captive portal or an attacker. The parser runs inside the host's process, so it bounds
//! everything an answer controls: the bytes it reads ([`MAX_ANSWER_BYTES`]), the nesting
//! ([`MAX_DEPTH`]), the number of elements and attributes ([`MAX_ELEMENTS`],
//! [`MAX_ATTRIBUTES`], [`MAX_ATTRIBUTES_PER_ELEMENT`]), and it refuses DTDs, so no entity is
//! ever expanded. Nothing here recurses over the tree: searches use an explicit stack, and the
//! depth bound keeps the derived `Drop`, `Clone` and `Debug` of a parsed tree shallow.

use quick_xml::events::Event;
use quick_xml::Reader;

/// The largest answer body parsed, in bytes (4 MiB). Tableau's answers are a few KiB; the
/// largest, a 1000-item page of data sources, is well under 2 MiB. The HTTP layer stops reading
/// a body at this size too.
pub const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// The deepest element nesting accepted, the root being depth 1. Tableau's answers are fewer
/// than 10 deep; the bound keeps every walk over the tree (and its `Drop`) shallow.
pub const MAX_DEPTH: usize = 64;

/// The most elements accepted in one answer. A 1000-item page of data sources, with their
/// project, owner and tags, is under 10,000; the bound keeps memory (about 100 bytes per
/// element, ~10 MiB here) proportional to it rather than to what a stream of `<a/>` could cost.
pub const MAX_ELEMENTS: usize = 100_000;

/// The most attributes (namespace declarations excluded) accepted in one answer; a 1000-item
/// page of data sources has about 20,000.
pub const MAX_ATTRIBUTES: usize = 200_000;

/// The most attributes accepted on one element, namespace declarations included (a Tableau
/// `<datasource>` has about 20). It also bounds the XML reader's duplicate-attribute check,
/// whose cost grows with the square of the count.
pub const MAX_ATTRIBUTES_PER_ELEMENT: usize = 64;

/// Why a DOCTYPE is refused: a DTD can declare entities whose expansion is exponential.
pub const DTD_REFUSED: &str = "the answer declares a DTD, which Tableau never sends; refused";

/// A parsed XML element: local name, attributes, children and text.
#[derive(Debug, Default, Clone)]
#[allow(missing_docs)]
pub struct Element {
    /// Local name.
    pub name: String,
    /// Attributes by local name, unescaped.
    pub attrs: Vec<(String, String)>,
    /// Child elements in order.
    pub children: Vec<Element>,
    /// Concatenated text content directly inside this element.
    pub text: String,
}

impl Element {
    /// An attribute's value.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first child with this name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The first element with this name, searching depth-first (self included). Walks with an
    /// explicit stack, so any depth is safe.
    pub fn find(&self, name: &str) -> Option<&Element> {
        self.walk().find(|el| el.name == name)
    }

    /// This element and all its descendants, depth-first in document order. Iterative.
    pub fn walk(&self) -> Walk<'_> {
        Walk { todo: vec![self] }
    }
}

/// The iterator of [`Element::walk`].
#[derive(Debug)]
pub struct Walk<'a> {
    todo: Vec<&'a Element>,
}

impl<'a> Iterator for Walk<'a> {
    type Item = &'a Element;

    fn next(&mut self) -> Option<&'a Element> {
        let el = self.todo.pop()?;
        self.todo.extend(el.children.iter().rev());
        Some(el)
    }
}

fn local(name: &[u8]) -> String {
    let name = match name.iter().rposition(|&b| b == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    };
    String::from_utf8_lossy(name).into_owned()
}

/// Counts of what an answer has produced so far, checked against the limits.
#[derive(Default)]
struct Budget {
    elements: usize,
    attributes: usize,
}

fn element_from(
    e: &quick_xml::events::BytesStart<'_>,
    depth: usize,
    budget: &mut Budget,
) -> Result<Element, String> {
    if depth > MAX_DEPTH {
        return Err(format!(
            "the answer nests elements deeper than {MAX_DEPTH}, which Tableau never does; refused"
        ));
    }
    budget.elements += 1;
    if budget.elements > MAX_ELEMENTS {
        return Err(format!(
            "the answer has more than {MAX_ELEMENTS} elements, which Tableau never sends; refused"
        ));
    }
    let mut el = Element {
        name: local(e.name().as_ref()),
        ..Element::default()
    };
    if el.name.is_empty() {
        return Err("an element has no name".into());
    }
    if depth == 1 && el.name.eq_ignore_ascii_case("html") {
        return Err("the answer is an HTML page, not Tableau XML".into());
    }
    for (i, attr) in e.attributes().enumerate() {
        // Namespace declarations count here too: the reader checks each attribute against all
        // before it, kept or not.
        if i == MAX_ATTRIBUTES_PER_ELEMENT {
            return Err(format!(
                "<{}> has more than {MAX_ATTRIBUTES_PER_ELEMENT} attributes, which Tableau never sends; refused",
                el.name
            ));
        }
        let attr = attr.map_err(|err| format!("bad attribute: {err}"))?;
        let key = attr.key.as_ref();
        if key.starts_with(b"xmlns") {
            continue;
        }
        budget.attributes += 1;
        if budget.attributes > MAX_ATTRIBUTES {
            return Err(format!(
                "the answer has more than {MAX_ATTRIBUTES} attributes, which Tableau never sends; refused"
            ));
        }
        let value = attr
            .unescape_value()
            .map_err(|err| format!("bad attribute value: {err}"))?;
        el.attrs.push((local(key), value.into_owned()));
    }
    Ok(el)
}

/// Parses a whole document and returns its root element. Refuses, with a message saying why,
/// anything that is not a plain XML document within the limits above: a body larger than
/// [`MAX_ANSWER_BYTES`], a DOCTYPE, nesting deeper than [`MAX_DEPTH`], too many elements or
/// attributes, an HTML page, text before the root, an unknown entity, or a document that ends
/// before its root element does. Content after the root element is not read.
pub fn parse(xml: &str) -> Result<Element, String> {
    if xml.len() > MAX_ANSWER_BYTES {
        return Err(format!(
            "the answer is {} bytes, more than the {MAX_ANSWER_BYTES} a Tableau answer may have; refused",
            xml.len()
        ));
    }
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut budget = Budget::default();
    loop {
        match reader.read_event().map_err(|e| format!("not XML: {e}"))? {
            Event::Start(e) => {
                let el = element_from(&e, stack.len() + 1, &mut budget)?;
                stack.push(el);
            }
            Event::Empty(e) => {
                let el = element_from(&e, stack.len() + 1, &mut budget)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => return Ok(el),
                }
            }
            Event::End(_) => {
                let el = stack.pop().ok_or("unbalanced XML")?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => return Ok(el),
                }
            }
            Event::Text(t) => {
                let text = t.decode().map_err(|e| format!("bad text: {e}"))?;
                match stack.last_mut() {
                    Some(top) => top.text.push_str(&text),
                    None => {
                        if !text.chars().all(|c| c.is_whitespace() || c == '\u{feff}') {
                            return Err("not XML: text before the root element".into());
                        }
                    }
                }
            }
            Event::GeneralRef(r) => {
                let Some(top) = stack.last_mut() else {
                    return Err("not XML: a reference before the root element".into());
                };
                if let Some(c) = r
                    .resolve_char_ref()
                    .map_err(|e| format!("bad reference: {e}"))?
                {
                    top.text.push(c);
                } else {
                    let name = r.decode().map_err(|e| format!("bad reference: {e}"))?;
                    let resolved = quick_xml::escape::resolve_predefined_entity(&name)
                        .ok_or_else(|| format!("unknown entity &{name};"))?;
                    top.text.push_str(resolved);
                }
            }
            Event::CData(t) => {
                let Some(top) = stack.last_mut() else {
                    return Err("not XML: CDATA before the root element".into());
                };
                top.text.push_str(&String::from_utf8_lossy(&t));
            }
            Event::DocType(d) => {
                let is_html = d
                    .trim_ascii_start()
                    .get(..4)
                    .is_some_and(|w| w.eq_ignore_ascii_case(b"html"));
                return Err(if is_html {
                    "the answer is an HTML page, not Tableau XML".into()
                } else {
                    DTD_REFUSED.into()
                });
            }
            Event::Eof => return Err("XML document ended early".into()),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
}

/// `<error code><summary/><detail/></error>` from a failed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableauError {
    /// Tableau's six-digit code, e.g. `401002`.
    pub code: String,
    /// Short summary.
    pub summary: String,
    /// Details.
    pub detail: String,
}

/// Reads an error body, XML or JSON; `None` when it is neither (e.g. a gateway's HTML page) or
/// is larger than [`MAX_ANSWER_BYTES`]. JSON nesting is bounded by `serde_json` (128 levels).
pub fn parse_error(body: &str) -> Option<TableauError> {
    if body.len() > MAX_ANSWER_BYTES {
        return None;
    }
    let trimmed = body.trim_start();
    if trimmed.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(trimmed).ok()?;
        let e = v.get("error")?;
        let s = |k: &str| match e.get(k) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        return Some(TableauError {
            code: s("code"),
            summary: s("summary"),
            detail: s("detail"),
        });
    }
    let root = parse(body).ok()?;
    let e = root.find("error")?;
    Some(TableauError {
        code: e.attr("code").unwrap_or_default().to_owned(),
        summary: e
            .child("summary")
            .map(|s| s.text.trim().to_owned())
            .unwrap_or_default(),
        detail: e
            .child("detail")
            .map(|s| s.text.trim().to_owned())
            .unwrap_or_default(),
    })
}

/// An attribute that must be present and not blank (ids, names, tokens).
fn required<'a>(el: &'a Element, attr: &str) -> Result<&'a str, String> {
    match el.attr(attr) {
        None => Err(format!("<{}> has no {attr} attribute", el.name)),
        Some(v) if v.trim().is_empty() => {
            Err(format!("<{}> has an empty {attr} attribute", el.name))
        }
        Some(v) => Ok(v),
    }
}

fn find<'a>(root: &'a Element, name: &str) -> Result<&'a Element, String> {
    root.find(name)
        .ok_or_else(|| format!("the response has no <{name}> element"))
}

/// Server Info.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// e.g. `3.25`.
    pub rest_api_version: String,
}

/// Parses Server Info.
pub fn server_info(root: &Element) -> Result<ServerInfo, String> {
    let info = find(root, "serverInfo")?;
    let rest = info
        .child("restApiVersion")
        .map(|e| e.text.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or("serverInfo has no restApiVersion")?;
    Ok(ServerInfo {
        rest_api_version: rest,
    })
}

/// The result of signing in.
#[derive(Clone)]
pub struct Credentials {
    /// The session token (secret).
    pub token: String,
    /// The site LUID for `/sites/{id}` URLs.
    pub site_id: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("token", &"***")
            .field("site_id", &self.site_id)
            .finish()
    }
}

/// Parses Sign In.
pub fn credentials(root: &Element) -> Result<Credentials, String> {
    let c = find(root, "credentials")?;
    let site = c.child("site").ok_or("credentials have no <site>")?;
    Ok(Credentials {
        token: required(c, "token")?.to_owned(),
        site_id: required(site, "id")?.to_owned(),
    })
}

/// `<pagination>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pagination {
    /// Items in all pages.
    pub total_available: u64,
}

fn pagination(root: &Element) -> Pagination {
    let num = |el: &Element, k: &str| el.attr(k).and_then(|v| v.parse().ok()).unwrap_or(0);
    root.find("pagination")
        .map(|p| Pagination {
            total_available: num(p, "totalAvailable"),
        })
        .unwrap_or_default()
}

/// A project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// LUID.
    pub id: String,
    /// Name (unique among siblings).
    pub name: String,
    /// Parent LUID; `None` for top-level projects.
    pub parent_id: Option<String>,
}

/// Parses a page of Query Projects.
pub fn projects(root: &Element) -> Result<(Pagination, Vec<Project>), String> {
    let list = match root.find("projects") {
        Some(l) => l.children.iter().filter(|c| c.name == "project").collect(),
        None => Vec::new(),
    };
    let mut out = Vec::with_capacity(list.len());
    for p in list {
        out.push(Project {
            id: required(p, "id")?.to_owned(),
            name: required(p, "name")?.to_owned(),
            parent_id: p
                .attr("parentProjectId")
                .filter(|s| !s.trim().is_empty())
                .map(str::to_owned),
        });
    }
    Ok((pagination(root), out))
}

/// A published data source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datasource {
    /// LUID.
    pub id: String,
    /// Name.
    pub name: String,
    /// Content URL.
    pub content_url: Option<String>,
    /// Project LUID.
    pub project_id: Option<String>,
    /// Project name.
    pub project_name: Option<String>,
    /// Last update, `YYYY-MM-DDTHH:MM:SSZ`.
    pub updated_at: Option<String>,
}

fn datasource_from(d: &Element) -> Result<Datasource, String> {
    let project = d.child("project");
    Ok(Datasource {
        id: required(d, "id")?.to_owned(),
        name: required(d, "name")?.to_owned(),
        content_url: d.attr("contentUrl").map(str::to_owned),
        project_id: project.and_then(|p| p.attr("id")).map(str::to_owned),
        project_name: project.and_then(|p| p.attr("name")).map(str::to_owned),
        updated_at: d.attr("updatedAt").map(str::to_owned),
    })
}

/// Parses a page of Query Data Sources.
pub fn datasources(root: &Element) -> Result<(Pagination, Vec<Datasource>), String> {
    let mut out = Vec::new();
    if let Some(list) = root.find("datasources") {
        for d in list.children.iter().filter(|c| c.name == "datasource") {
            out.push(datasource_from(d)?);
        }
    }
    Ok((pagination(root), out))
}

/// A file upload session's state.
#[derive(Debug, Clone)]
pub struct FileUpload {
    /// Opaque id (contains `:`).
    pub upload_session_id: String,
}

/// Parses Initiate File Upload / Append to File Upload.
pub fn file_upload(root: &Element) -> Result<FileUpload, String> {
    let f = find(root, "fileUpload")?;
    Ok(FileUpload {
        upload_session_id: required(f, "uploadSessionId")?.to_owned(),
    })
}

/// An asynchronous job.
#[derive(Debug, Clone)]
pub struct Job {
    /// LUID.
    pub id: String,
    /// 0–100 when reported.
    pub progress: Option<u32>,
    /// Set once the job has finished.
    pub completed_at: Option<String>,
    /// 0 success, 1 failed, 2 cancelled, 3 completed; meaningful only once `completed_at` is set.
    pub finish_code: Option<i32>,
    /// Any `<notes>` text (failure reasons).
    pub notes: Vec<String>,
}

/// The text of every `<notes>` below `el`, in document order. Iterative.
fn collect_notes(el: &Element) -> Vec<String> {
    el.walk()
        .skip(1)
        .filter(|c| c.name == "notes" && !c.text.trim().is_empty())
        .map(|c| c.text.trim().to_owned())
        .collect()
}

/// Parses a `<job>`.
pub fn job(root: &Element) -> Result<Job, String> {
    let j = find(root, "job")?;
    let notes = collect_notes(j);
    Ok(Job {
        id: required(j, "id")?.to_owned(),
        progress: j
            .attr("progress")
            .and_then(|v| v.parse().ok())
            .filter(|p| *p <= 100),
        completed_at: j
            .attr("completedAt")
            .filter(|s| !s.trim().is_empty())
            .map(str::to_owned),
        finish_code: j.attr("finishCode").and_then(|v| v.parse().ok()),
        notes,
    })
}

/// What Publish Data Source returned: the data source, or a job when published with `asJob`.
#[derive(Debug, Clone)]
pub enum Published {
    /// Synchronous publish.
    Datasource(Datasource),
    /// Asynchronous publish.
    Job(Job),
}

/// Parses the Publish Data Source response.
pub fn published(root: &Element) -> Result<Published, String> {
    if let Some(d) = root.find("datasource") {
        return Ok(Published::Datasource(datasource_from(d)?));
    }
    if root.find("job").is_some() {
        return Ok(Published::Job(job(root)?));
    }
    Err("the publish response has neither <datasource> nor <job>".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset(name: &str) -> Element {
        let path = format!(
            "{}/tests/fixtures/tsc-assets/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        parse(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn parses_tableau_sign_in() {
        let c = credentials(&asset("auth_sign_in.xml")).unwrap();
        assert_eq!(c.token, "eIX6mvFsqyansa4KqEI1UwOpS8ggRs2l");
        assert_eq!(c.site_id, "6b7179ba-b82b-4f0f-91ed-812074ac5da6");
        assert!(!format!("{c:?}").contains("eIX6"));
    }

    #[test]
    fn parses_sign_in_error() {
        let body = std::fs::read_to_string(format!(
            "{}/tests/fixtures/tsc-assets/auth_sign_in_error.xml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let e = parse_error(&body).unwrap();
        assert_eq!(e.code, "401001");
        assert!(!e.summary.is_empty());
    }

    #[test]
    fn parses_server_info_and_projects() {
        assert_eq!(
            server_info(&asset("server_info_get.xml"))
                .unwrap()
                .rest_api_version,
            "3.10"
        );
        let (page, projects) = projects(&asset("project_get.xml")).unwrap();
        assert_eq!(page.total_available, 3);
        assert_eq!(projects.len(), 3);
        assert_eq!(projects[2].name, "Tableau > Child 1");
        assert_eq!(
            projects[2].parent_id.as_deref(),
            Some(projects[1].id.as_str())
        );
        assert_eq!(projects[0].parent_id, None);
    }

    #[test]
    fn parses_uploads_publish_and_jobs() {
        let f = file_upload(&asset("fileupload_initialize.xml")).unwrap();
        assert!(f.upload_session_id.contains(':'));
        assert!(file_upload(&asset("fileupload_append.xml"))
            .unwrap()
            .upload_session_id
            .contains(':'));
        match published(&asset("datasource_publish.xml")).unwrap() {
            Published::Datasource(d) => assert!(d.project_id.is_some()),
            other => panic!("{other:?}"),
        }
        match published(&asset("datasource_publish_async.xml")).unwrap() {
            Published::Job(j) => {
                assert_eq!(j.finish_code, Some(1), "queued job carries finishCode 1");
                assert!(
                    j.completed_at.is_none(),
                    "so finishCode must not be read yet"
                );
            }
            other => panic!("{other:?}"),
        }
        let done = job(&asset("job_get_by_id_completed.xml")).unwrap();
        assert!(done.completed_at.is_some());
        assert_eq!(done.finish_code, Some(3));
        let failed = job(&asset("job_get_by_id_failed.xml")).unwrap();
        assert_eq!(failed.finish_code, Some(1));
        let (_, ds) = datasources(&asset("datasource_get.xml")).unwrap();
        assert!(!ds.is_empty());
        let (_, none) = datasources(&asset("datasource_get_empty.xml")).unwrap();
        assert!(none.is_empty());
    }

    fn all_assets() -> Vec<(String, String)> {
        let dir = format!("{}/tests/fixtures/tsc-assets", env!("CARGO_MANIFEST_DIR"));
        let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "xml"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn every_tsc_fixture_still_parses() {
        let assets = all_assets();
        assert!(assets.len() >= 20, "fixtures missing: {}", assets.len());
        for (name, body) in assets {
            let root = parse(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
            let expected = if name == "server_info_auth_info.xml" {
                "authinfo"
            } else {
                "tsResponse"
            };
            assert_eq!(root.name, expected, "{name}");
            assert!(root.walk().count() > 1, "{name}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_quickly() {
        let n = 200_000;
        let body = format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
        let started = std::time::Instant::now();
        let err = parse(&body).unwrap_err();
        assert!(err.contains("deeper than 64"), "{err}");
        // An unclosed one, and one made of empty elements at the bottom, likewise.
        let err = parse(&"<a>".repeat(n)).unwrap_err();
        assert!(err.contains("deeper than 64"), "{err}");
        let err = parse(&format!("{}<b/>", "<a>".repeat(MAX_DEPTH))).unwrap_err();
        assert!(err.contains("deeper than 64"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert!(parse_error(&body).is_none());
    }

    #[test]
    fn nesting_up_to_the_limit_parses_and_is_searched() {
        let body = format!(
            "{}<job id=\"j\"><notes>deep</notes></job>{}",
            "<a>".repeat(MAX_DEPTH - 2),
            "</a>".repeat(MAX_DEPTH - 2)
        );
        let root = parse(&body).unwrap();
        let j = job(&root).unwrap();
        assert_eq!(j.id, "j");
        assert_eq!(j.notes, vec!["deep".to_owned()]);
    }

    #[test]
    fn find_and_notes_do_not_recurse_on_hand_built_trees() {
        // Trees built in code are not bounded by parse: the walks must still be iterative.
        let mut el = Element {
            name: "notes".into(),
            text: "bottom".into(),
            ..Element::default()
        };
        for _ in 0..200_000 {
            el = Element {
                name: "x".into(),
                children: vec![el],
                ..Element::default()
            };
        }
        assert_eq!(el.find("notes").unwrap().text, "bottom");
        assert_eq!(collect_notes(&el), vec!["bottom".to_owned()]);
        // Dismantle it without a recursive drop.
        let mut todo = vec![el];
        while let Some(mut e) = todo.pop() {
            todo.append(&mut e.children);
        }
    }

    #[test]
    fn walk_is_document_order() {
        let root = parse("<r><a><b/></a><c/></r>").unwrap();
        let names: Vec<&str> = root.walk().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["r", "a", "b", "c"]);
    }

    #[test]
    fn dtds_are_refused_so_entities_never_expand() {
        let laughs = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<tsResponse><credentials token="&lol9;"><site id="s"/></credentials></tsResponse>"#;
        assert_eq!(parse(laughs).unwrap_err(), DTD_REFUSED);
        assert!(parse_error(laughs).is_none());
        let external = r#"<!DOCTYPE r SYSTEM "file:///etc/passwd"><r>&xxe;</r>"#;
        assert_eq!(parse(external).unwrap_err(), DTD_REFUSED);
        // Without a DTD an entity is unknown, not expanded, in text and in attributes.
        assert!(parse("<r>&lol9;</r>")
            .unwrap_err()
            .contains("unknown entity"));
        assert!(parse(r#"<r a="&lol9;"/>"#).is_err());
        // A declaration outside a DOCTYPE is not XML.
        assert!(parse(r#"<!ENTITY lol "lol"><r/>"#).is_err());
        // The predefined ones and character references still work.
        let r = parse(r#"<r a="&lt;&#65;">&amp;&#x42;</r>"#).unwrap();
        assert_eq!(r.attr("a"), Some("<A"));
        assert_eq!(r.text, "&B");
    }

    #[test]
    fn html_pages_are_errors() {
        let page = std::fs::read_to_string(format!(
            "{}/tests/fixtures/tsc-assets/server_info_wrong_site.html",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        assert!(parse(&page).is_err());
        assert!(parse_error(&page).is_none());
        let err =
            parse("<!DOCTYPE html>\n<html><body>Sign in to the Wi-Fi</body></html>").unwrap_err();
        assert!(err.contains("HTML page"), "{err}");
        let err = parse("<HTML><body><p>502 Bad Gateway</p></body></HTML>").unwrap_err();
        assert!(err.contains("HTML page"), "{err}");
        let err = parse("Bad gateway <b>x</b>").unwrap_err();
        assert!(err.contains("text before the root"), "{err}");
    }

    #[test]
    fn truncated_documents_are_errors() {
        let body = std::fs::read_to_string(format!(
            "{}/tests/fixtures/tsc-assets/auth_sign_in.xml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let end = body.rfind("</tsResponse>").unwrap();
        for cut in (0..end).filter(|&i| body.is_char_boundary(i)) {
            assert!(parse(&body[..cut]).is_err(), "cut at {cut} parsed");
        }
        assert!(parse("").is_err());
        assert!(parse("<tsResponse><credentials token=\"t").is_err());
    }

    #[test]
    fn oversized_answers_are_refused_before_parsing() {
        let filler = "x".repeat(MAX_ANSWER_BYTES);
        let body = format!("<r>{filler}</r>");
        let err = parse(&body).unwrap_err();
        assert!(err.contains("more than the 4194304"), "{err}");
        assert!(parse_error(&body).is_none());
        let json = format!(r#"{{"error":{{"code":"1","detail":"{filler}"}}}}"#);
        assert!(parse_error(&json).is_none());
        // Just under the limit is read.
        let body = format!("<r>{}</r>", &filler[..MAX_ANSWER_BYTES - 7]);
        assert_eq!(parse(&body).unwrap().text.len(), MAX_ANSWER_BYTES - 7);
    }

    #[test]
    fn element_and_attribute_counts_are_bounded() {
        let many = format!("<r>{}</r>", "<a/>".repeat(MAX_ELEMENTS));
        let err = parse(&many).unwrap_err();
        assert!(err.contains("more than 100000 elements"), "{err}");
        let ok = format!("<r>{}</r>", "<a/>".repeat(MAX_ELEMENTS - 1));
        assert_eq!(parse(&ok).unwrap().children.len(), MAX_ELEMENTS - 1);

        let attrs: String = (0..=MAX_ATTRIBUTES_PER_ELEMENT)
            .map(|i| format!(" a{i}=\"\""))
            .collect();
        let err = parse(&format!("<r{attrs}/>")).unwrap_err();
        assert!(err.contains("more than 64 attributes"), "{err}");
        // A quadratic duplicate check over 300,000 attributes would take minutes.
        let huge: String = (0..300_000).map(|i| format!(" a{i:x}=\"\"")).collect();
        assert!(huge.len() < MAX_ANSWER_BYTES);
        let started = std::time::Instant::now();
        let err = parse(&format!("<r{huge}/>")).unwrap_err();
        assert!(err.contains("more than 64 attributes"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));

        let per = MAX_ATTRIBUTES_PER_ELEMENT;
        let row: String = (0..per).map(|i| format!(" a{i}=\"\"")).collect();
        let n = MAX_ATTRIBUTES / per + 1;
        let err = parse(&format!("<r>{}</r>", format!("<a{row}/>").repeat(n))).unwrap_err();
        assert!(err.contains("more than 200000 attributes"), "{err}");
        // Namespace declarations are not kept, but count towards the per-element bound.
        let ns: String = (0..MAX_ATTRIBUTES_PER_ELEMENT)
            .map(|i| format!(" xmlns:n{i}=\"u{i}\""))
            .collect();
        assert!(parse(&format!("<r{ns}/>")).unwrap().attrs.is_empty());
        let ns: String = (0..250_000).map(|i| format!(" xmlns:{i:x}=\"\"")).collect();
        assert!(ns.len() < MAX_ANSWER_BYTES);
        let started = std::time::Instant::now();
        let err = parse(&format!("<r{ns}/>")).unwrap_err();
        assert!(err.contains("more than 64 attributes"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn blank_ids_and_out_of_range_progress_are_not_accepted() {
        let root = parse(
            r#"<tsResponse><credentials token=" "><site id="s"/></credentials></tsResponse>"#,
        )
        .unwrap();
        assert!(credentials(&root).unwrap_err().contains("empty token"));
        let root =
            parse(r#"<tsResponse><credentials token="t"><site id=""/></credentials></tsResponse>"#)
                .unwrap();
        assert!(credentials(&root).unwrap_err().contains("empty id"));
        let root = parse(r#"<r><fileUpload uploadSessionId=""/></r>"#).unwrap();
        assert!(file_upload(&root).is_err());
        let root = parse(r#"<r><projects><project id="" name="n"/></projects></r>"#).unwrap();
        assert!(projects(&root).is_err());
        let root = parse(r#"<r><datasource id="d" name=""/></r>"#).unwrap();
        assert!(published(&root).is_err());
        let root = parse(r#"<r><job id="j" progress="101"/></r>"#).unwrap();
        assert_eq!(job(&root).unwrap().progress, None);
        let root = parse(r#"<r><job id="j" progress="100"/></r>"#).unwrap();
        assert_eq!(job(&root).unwrap().progress, Some(100));
    }

    #[test]
    fn non_xml_error_bodies_are_none() {
        assert!(parse_error("<html><body>Bad gateway</body></html>").is_none());
        let json =
            parse_error(r#"{"error":{"summary":"S","detail":"D","code":"401000"}}"#).unwrap();
        assert_eq!(json.code, "401000");
    }
}
