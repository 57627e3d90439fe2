"""The tool's configuration XML -> the library's JSON config (a dict) and the tool's own settings.

One element per config key of the library (README, "Configuration"), nested keys as nested
elements:

    <Configuration>
      <server_url>https://tableau.example.com</server_url>
      <site>finance</site>
      <auth><method>pat</method><token_name>etl</token_name><token_secret_env>TABLEAU_PAT</token_secret_env></auth>
      <project>Finance/Quarterly</project>
      <datasource_name>Orders</datasource_name>
      <mode>overwrite</mode>
    </Configuration>

Text is converted by key (KINDS below): integers and booleans from their text, lists from child
elements (`<project><name>A/B</name><name>C</name></project>`, `<scopes><scope>…</scope></scopes>`).
Leading and trailing whitespace of a value is dropped, whitespace between elements ignored; an
empty element is a key left out (so a UI may write every field), except `<site/>`, the Default site.
A value that does not convert (`<chunk_size_bytes>big</chunk_size_bytes>`) and keys this tool does
not know are passed on unchanged, so the library reports them with its own messages (key, what it
expected, "did you mean"). Problems only XML can have (attributes, repeated elements, text mixed
with elements) and bad tool-only settings are reported here, all at once.

Tool-only keys, not passed to the library: `preflight` (true: check credentials, site, project
and mode when the workflow starts) and `hyper_database_version` (the .hyper file format: 2, the
default, is read by every supported Tableau version; 3 adds NUMERIC with more than 18 digits and
needs Tableau Server 2023.1 or later).
"""
import re

import xmltodict

TEXT, INT, BOOL, AS_JOB, TEXT_OR_LIST, LIST = "text", "int", "bool", "as_job", "text_or_list", "list"

# Every key of the library's config (src/config/read.rs), by what its text becomes.
KINDS = {
    "server_url": TEXT,
    "allow_insecure_http": BOOL,
    "site": TEXT,
    "auth": {
        "method": TEXT,
        "token_name": TEXT,
        "token_secret": TEXT,
        "token_secret_env": TEXT,
        "username": TEXT,
        "password": TEXT,
        "password_env": TEXT,
        "client_id": TEXT,
        "secret_id": TEXT,
        "secret_value": TEXT,
        "secret_value_env": TEXT,
        "scopes": LIST,
    },
    "project": TEXT_OR_LIST,
    "project_id": TEXT,
    "datasource_name": TEXT,
    "mode": TEXT,
    "file_type": TEXT,
    "description": TEXT,
    "api_version": TEXT,
    "spool_dir": TEXT,
    "chunk_size_bytes": INT,
    "as_job": AS_JOB,
    "request_timeout_secs": INT,
    "job_timeout_secs": INT,
    "session_wait_secs": INT,
    "single_request_max_bytes": INT,
    "session_max_age_secs": INT,
    "retry": {
        "max_attempts": INT,
        "max_elapsed_secs": INT,
        "base_delay_ms": INT,
        "max_delay_ms": INT,
        "max_rate_limit_wait_secs": INT,
        "max_reauthentications": INT,
        "max_upload_restarts": INT,
        "commit_verify_secs": INT,
    },
    "tls_ca_file": TEXT,
    "proxy": {
        "url": TEXT,
        "username": TEXT,
        "password": TEXT,
        "password_env": TEXT,
    },
}

# Keys whose empty value means something ("" is the Default site), so <site/> is not "absent".
EMPTY_MEANS_EMPTY = {"site"}

# The tool's own keys: (kind, default).
TOOL_KEYS = {"preflight": (BOOL, False), "hyper_database_version": (INT, 2)}
HYPER_DATABASE_VERSIONS = (0, 2, 3, 4)

_INTEGER = re.compile(r"[+-]?[0-9]+\Z")


class ConfigXmlError(Exception):
    """The configuration XML has problems; .problems lists each, the message all of them."""

    def __init__(self, problems):
        self.problems = list(problems)
        if len(self.problems) == 1:
            text = f"configuration: {self.problems[0]}"
        else:
            text = f"configuration has {len(self.problems)} problems: " + "; ".join(
                f"({i}) {p}" for i, p in enumerate(self.problems, 1))
        super().__init__(text)


class ToolSettings:
    """The settings this tool reads itself (not the library's)."""

    def __init__(self, preflight=False, hyper_database_version=2):
        self.preflight = preflight
        self.hyper_database_version = hyper_database_version

    def __repr__(self):
        return f"ToolSettings(preflight={self.preflight}, hyper_database_version={self.hyper_database_version})"


def parse_xml(text):
    """The <Configuration> element of an XML string as xmltodict gives it (as the SDK does)."""
    try:
        doc = xmltodict.parse(text, strip_whitespace=False)
    except Exception as e:  # expat's message says where
        raise ConfigXmlError([f"not well-formed XML ({e})"]) from None
    if "Configuration" not in doc:
        raise ConfigXmlError([f"the root element must be <Configuration>, not <{next(iter(doc))}>"])
    return doc["Configuration"]


def convert(tool_config):
    """(library config dict, ToolSettings) from the SDK's `provider.tool_config`.

    tool_config is what ayx-python-sdk 2.6.1 gives: the <Configuration> element parsed by
    xmltodict with whitespace kept (a dict, or None/{} when empty); an XML string is accepted too.
    Raises ConfigXmlError naming every problem that only this converter can see."""
    if isinstance(tool_config, (str, bytes)):
        tool_config = parse_xml(tool_config)
    problems = []
    element = _children(tool_config or {}, "Configuration", problems)
    tool = ToolSettings()
    for key, (kind, default) in TOOL_KEYS.items():
        if key not in element:
            continue
        raw = element.pop(key)
        text = _leaf_text(raw, key, problems)
        if text is None:
            continue
        if text == "":
            setattr(tool, key, default)
            continue
        value = _convert_text(text, kind)
        if kind == BOOL and not isinstance(value, bool):
            problems.append(f"<{key}> must be true or false, not {_quote(text)}")
        elif kind == INT and key == "hyper_database_version" and value not in HYPER_DATABASE_VERSIONS:
            problems.append(
                f"<hyper_database_version> must be one of {', '.join(map(str, HYPER_DATABASE_VERSIONS))} "
                f"(2, the default, is read by every supported Tableau version; 3 is needed for decimals of "
                f"more than 18 digits, Tableau Server 2023.1 or later), not {_quote(text)}")
        else:
            setattr(tool, key, value)
    config = _convert_section(element, KINDS, "", problems)
    if problems:
        raise ConfigXmlError(problems)
    return config, tool


def _convert_section(element, kinds, path, problems):
    """The dict of one element's children, each converted by its kind."""
    out = {}
    for key, raw in element.items():
        where = f"{path}{key}"
        kind = kinds.get(key) if isinstance(kinds, dict) else None
        if isinstance(raw, list):
            problems.append(f"<{where.replace('.', '/')}> appears {len(raw)} times; give it once")
            continue
        if isinstance(kind, dict) or (kind is None and isinstance(raw, dict)):
            if raw is None or (isinstance(raw, str) and raw.strip() == ""):
                continue  # an empty section is left out
            if isinstance(raw, str):
                out[key] = raw.strip()  # text where an object belongs: the library says what it wants
                continue
            children = _children(raw, where, problems)
            out[key] = _convert_section(children, kind or {}, where + ".", problems)
            continue
        if kind in (LIST, TEXT_OR_LIST) and isinstance(raw, dict):
            items = _list_items(raw, where, problems)
            if items is not None:
                out[key] = items
            continue
        text = _leaf_text(raw, where, problems)
        if text is None:
            continue
        if text == "" and key not in EMPTY_MEANS_EMPTY:
            continue
        out[key] = _convert_text(text, kind)
    return out


def _children(raw, where, problems):
    """The child elements of an element that must hold elements: text between them must be blank."""
    if isinstance(raw, str):
        if raw.strip():
            problems.append(f"<{_tag(where)}> holds text; it must hold elements")
        return {}
    children = {}
    for name, value in raw.items():
        if name.startswith("@"):
            problems.append(f"<{_tag(where)}> has the attribute {name[1:]}; write each setting as an element")
        elif name == "#text":
            if value.strip():
                problems.append(  # the text is not repeated: it could be a secret
                    f"<{_tag(where)}> mixes text with elements; give each setting as an element of its own")
        else:
            children[name] = value
    return children


def _leaf_text(raw, where, problems):
    """The stripped text of an element that must hold only text ("" when empty); None after a problem."""
    if raw is None:
        return ""
    if isinstance(raw, str):
        return raw.strip()
    attributes = [n[1:] for n in raw if n.startswith("@")]
    elements = [n for n in raw if not n.startswith("@") and n != "#text"]
    if elements:
        problems.append(
            f"<{_tag(where)}> must hold a value, not elements ({', '.join('<' + e + '>' for e in elements)})")
    elif attributes:
        problems.append(f"<{_tag(where)}> has the attribute {attributes[0]}; write each setting as an element")
    else:
        return (raw.get("#text") or "").strip()
    return None


def _list_items(raw, where, problems):
    """`<key><item>a</item><item>b</item></key>` as ["a", "b"] (any one child name)."""
    children = _children(raw, where, problems)
    if len(children) != 1:
        if children:
            problems.append(
                f"<{_tag(where)}> must hold one kind of element per item (such as <name>), "
                f"not {', '.join('<' + c + '>' for c in children)}")
        return None
    (name, values), = children.items()
    items = []
    for value in values if isinstance(values, list) else [values]:
        text = _leaf_text(value, f"{where}.{name}", problems)
        if text is None:
            return None
        items.append(text)
    return items


def _convert_text(text, kind):
    """An integer or boolean from its text when `kind` says so and it converts; else the text."""
    if kind == INT and _INTEGER.match(text):
        return int(text)
    if kind in (BOOL, AS_JOB) and text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def _tag(where):
    return where.replace(".", "/") if where else "Configuration"


def _quote(text, limit=60):
    shown = text if len(text) <= limit else text[:limit] + "…"
    return '"' + shown.replace('"', '\\"') + '"'
