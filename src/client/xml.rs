//! Parsing Tableau's XML responses into small typed values.
//!
//! Element and attribute names are matched by local name, so the `http://tableau.com/api`
//! namespace (and the older `tableausoftware.com` one) are both accepted.

use quick_xml::events::Event;
use quick_xml::Reader;

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

    /// The first element with this name, searching depth-first (self included).
    pub fn find(&self, name: &str) -> Option<&Element> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }
}

fn local(name: &[u8]) -> String {
    let name = match name.iter().rposition(|&b| b == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    };
    String::from_utf8_lossy(name).into_owned()
}

fn element_from(e: &quick_xml::events::BytesStart<'_>) -> Result<Element, String> {
    let mut el = Element {
        name: local(e.name().as_ref()),
        ..Element::default()
    };
    for attr in e.attributes() {
        let attr = attr.map_err(|err| format!("bad attribute: {err}"))?;
        let key = attr.key.as_ref();
        if key.starts_with(b"xmlns") {
            continue;
        }
        let value = attr
            .unescape_value()
            .map_err(|err| format!("bad attribute value: {err}"))?;
        el.attrs.push((local(key), value.into_owned()));
    }
    Ok(el)
}

/// Parses a whole document and returns its root element.
pub fn parse(xml: &str) -> Result<Element, String> {
    let mut reader = Reader::from_str(xml);
    let mut stack: Vec<Element> = Vec::new();
    loop {
        match reader.read_event().map_err(|e| format!("not XML: {e}"))? {
            Event::Start(e) => stack.push(element_from(&e)?),
            Event::Empty(e) => {
                let el = element_from(&e)?;
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
                if let Some(top) = stack.last_mut() {
                    let text = t.decode().map_err(|e| format!("bad text: {e}"))?;
                    top.text.push_str(&text);
                }
            }
            Event::GeneralRef(r) => {
                if let Some(top) = stack.last_mut() {
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
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::Eof => return Err("XML document ended early".into()),
            _ => {}
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

/// Reads an error body, XML or JSON; `None` when it is neither (e.g. a gateway's HTML page).
pub fn parse_error(body: &str) -> Option<TableauError> {
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

fn required<'a>(el: &'a Element, attr: &str) -> Result<&'a str, String> {
    el.attr(attr)
        .ok_or_else(|| format!("<{}> has no {attr} attribute", el.name))
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
    /// e.g. `2025.1.0`, when present.
    pub product_version: Option<String>,
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
        product_version: info
            .child("productVersion")
            .map(|e| e.text.trim().to_owned()),
    })
}

/// The result of signing in.
#[derive(Clone)]
pub struct Credentials {
    /// The session token (secret).
    pub token: String,
    /// The site LUID for `/sites/{id}` URLs.
    pub site_id: String,
    /// The signed-in user's LUID.
    pub user_id: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("token", &"***")
            .field("site_id", &self.site_id)
            .field("user_id", &self.user_id)
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
        user_id: c
            .child("user")
            .and_then(|u| u.attr("id"))
            .map(str::to_owned),
    })
}

/// `<pagination>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pagination {
    /// 1-based page number.
    pub page_number: u64,
    /// Page size.
    pub page_size: u64,
    /// Items in all pages.
    pub total_available: u64,
}

fn pagination(root: &Element) -> Pagination {
    let num = |el: &Element, k: &str| el.attr(k).and_then(|v| v.parse().ok()).unwrap_or(0);
    root.find("pagination")
        .map(|p| Pagination {
            page_number: num(p, "pageNumber"),
            page_size: num(p, "pageSize"),
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
                .filter(|s| !s.is_empty())
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
    /// Cumulative size in MB, as reported.
    pub file_size_mb: Option<u64>,
}

/// Parses Initiate File Upload / Append to File Upload.
pub fn file_upload(root: &Element) -> Result<FileUpload, String> {
    let f = find(root, "fileUpload")?;
    Ok(FileUpload {
        upload_session_id: required(f, "uploadSessionId")?.to_owned(),
        file_size_mb: f.attr("fileSize").and_then(|v| v.parse().ok()),
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

fn collect_notes(el: &Element, out: &mut Vec<String>) {
    for c in &el.children {
        if c.name == "notes" && !c.text.trim().is_empty() {
            out.push(c.text.trim().to_owned());
        }
        collect_notes(c, out);
    }
}

/// Parses a `<job>`.
pub fn job(root: &Element) -> Result<Job, String> {
    let j = find(root, "job")?;
    let mut notes = Vec::new();
    collect_notes(j, &mut notes);
    Ok(Job {
        id: required(j, "id")?.to_owned(),
        progress: j.attr("progress").and_then(|v| v.parse().ok()),
        completed_at: j
            .attr("completedAt")
            .filter(|s| !s.is_empty())
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
        assert_eq!(
            file_upload(&asset("fileupload_append.xml"))
                .unwrap()
                .file_size_mb,
            Some(5)
        );
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

    #[test]
    fn non_xml_error_bodies_are_none() {
        assert!(parse_error("<html><body>Bad gateway</body></html>").is_none());
        let json =
            parse_error(r#"{"error":{"summary":"S","detail":"D","code":"401000"}}"#).unwrap();
        assert_eq!(json.code, "401000");
    }
}
