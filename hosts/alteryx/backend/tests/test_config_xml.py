"""The configuration XML -> library config converter (no library, no network)."""
import pytest
import xmltodict

from ayx_plugins.config_xml import ConfigXmlError, ToolSettings, convert


def sdk_view(xml):
    """What ayx-python-sdk 2.6.1 gives the tool as provider.tool_config for this XML."""
    return dict(xmltodict.parse(xml, strip_whitespace=False)["Configuration"] or {})


def both(xml):
    """convert() of the SDK's dict and of the XML string: they must agree."""
    from_dict = convert(sdk_view(xml))
    from_text = convert(xml)
    assert from_dict[0] == from_text[0]
    return from_dict


FULL = """
<Configuration>
  <server_url> https://tableau.example.com </server_url>
  <site>finance</site>
  <auth>
    <method>pat</method>
    <token_name>etl</token_name>
    <token_secret_env>TABLEAU_PAT</token_secret_env>
  </auth>
  <project>Finance/Quarterly</project>
  <datasource_name>Orders &amp; Returns &lt;EU&gt; 😀</datasource_name>
  <mode>overwrite</mode>
  <description/>
  <spool_dir>D:\\spool</spool_dir>
  <chunk_size_bytes>8388608</chunk_size_bytes>
  <allow_insecure_http>False</allow_insecure_http>
  <as_job>auto</as_job>
  <retry><max_attempts>3</max_attempts><max_elapsed_secs>120</max_elapsed_secs></retry>
  <proxy><url>http://proxy:3128</url><username>me</username><password_env>PROXY_PW</password_env></proxy>
  <preflight>true</preflight>
</Configuration>
"""


def test_every_kind_of_value_indented():
    config, tool = both(FULL)
    assert config == {
        "server_url": "https://tableau.example.com",
        "site": "finance",
        "auth": {"method": "pat", "token_name": "etl", "token_secret_env": "TABLEAU_PAT"},
        "project": "Finance/Quarterly",
        "datasource_name": "Orders & Returns <EU> 😀",
        "mode": "overwrite",
        "spool_dir": "D:\\spool",
        "chunk_size_bytes": 8388608,
        "allow_insecure_http": False,
        "as_job": "auto",
        "retry": {"max_attempts": 3, "max_elapsed_secs": 120},
        "proxy": {"url": "http://proxy:3128", "username": "me", "password_env": "PROXY_PW"},
    }
    assert tool.preflight is True and tool.hyper_database_version == 2


def test_not_indented_gives_the_same():
    flat = "".join(line.strip() for line in FULL.splitlines())
    assert both(flat)[0] == both(FULL)[0]
    assert both(flat)[1].preflight is True


def test_empty_elements_are_keys_left_out_except_site():
    config, tool = both("<Configuration><site/><description></description><project_id/>"
                        "<chunk_size_bytes> </chunk_size_bytes><retry/><preflight/></Configuration>")
    assert config == {"site": ""}
    assert tool.preflight is False


def test_empty_configuration():
    for xml in ("<Configuration/>", "<Configuration></Configuration>"):
        config, tool = both(xml)
        assert config == {}
        assert isinstance(tool, ToolSettings) and tool.preflight is False
    # (The SDK itself cannot take this one: dict("\n") fails in its set_tool_config.)
    assert convert("<Configuration>\n</Configuration>")[0] == {}
    assert convert({})[0] == {} and convert(None)[0] == {}


def test_project_as_a_list_of_names_and_scopes():
    config, _ = both("<Configuration><project><name>A/B</name><name>C</name></project>"
                     "<auth><method>connected_app</method><scopes><scope>tableau:content:read</scope></scopes></auth>"
                     "</Configuration>")
    assert config["project"] == ["A/B", "C"]
    assert config["auth"]["scopes"] == ["tableau:content:read"]


def test_as_job_and_booleans():
    config, _ = both("<Configuration><as_job>TRUE</as_job><allow_insecure_http>true</allow_insecure_http></Configuration>")
    assert config == {"as_job": True, "allow_insecure_http": True}


def test_values_that_do_not_convert_go_to_the_library_as_text():
    config, _ = both("<Configuration><request_timeout_secs>soon</request_timeout_secs>"
                     "<allow_insecure_http>maybe</allow_insecure_http><chunk_size_bytes>1e6</chunk_size_bytes>"
                     "<job_timeout_secs>-5</job_timeout_secs></Configuration>")
    assert config == {"request_timeout_secs": "soon", "allow_insecure_http": "maybe",
                      "chunk_size_bytes": "1e6", "job_timeout_secs": -5}


def test_unknown_keys_pass_through_for_the_library_to_name():
    config, _ = both("<Configuration><chunk_sise>1</chunk_sise><retry><max_atempts>2</max_atempts></retry>"
                     "<extra><deep>x</deep></extra></Configuration>")
    assert config == {"chunk_sise": "1", "retry": {"max_atempts": "2"}, "extra": {"deep": "x"}}


def test_text_where_a_section_belongs_goes_to_the_library():
    config, _ = both("<Configuration><auth>pat</auth></Configuration>")
    assert config == {"auth": "pat"}


def test_xml_only_problems_are_listed_together():
    with pytest.raises(ConfigXmlError) as e:
        convert("<Configuration><site>a</site><site>b</site><mode kind='x'>overwrite</mode>"
                "<auth>s3cr3t<method>pat</method></auth><server_url><a>1</a></server_url></Configuration>")
    problems = e.value.problems
    assert "<site> appears 2 times; give it once" in problems
    assert "<mode> has the attribute kind; write each setting as an element" in problems
    assert "<auth> mixes text with elements; give each setting as an element of its own" in problems
    assert "<server_url> must hold a value, not elements (<a>)" in problems
    assert str(e.value).startswith("configuration has 4 problems: (1) ")
    assert "s3cr3t" not in str(e.value)


def test_tool_settings_are_checked_here():
    with pytest.raises(ConfigXmlError) as e:
        convert("<Configuration><preflight>yes</preflight><hyper_database_version>7</hyper_database_version></Configuration>")
    assert len(e.value.problems) == 2
    assert '<preflight> must be true or false, not "yes"' in e.value.problems[0]
    assert "<hyper_database_version> must be one of 0, 2, 3, 4" in e.value.problems[1]
    _, tool = convert("<Configuration><hyper_database_version>3</hyper_database_version></Configuration>")
    assert tool.hyper_database_version == 3


def test_not_xml_or_another_root():
    with pytest.raises(ConfigXmlError, match="not well-formed XML"):
        convert("<Configuration><site>")
    with pytest.raises(ConfigXmlError, match="root element must be <Configuration>"):
        convert("<Settings/>")


def test_nested_section_problems_name_their_path():
    with pytest.raises(ConfigXmlError) as e:
        convert("<Configuration><retry><max_attempts>1</max_attempts><max_attempts>2</max_attempts></retry></Configuration>")
    assert e.value.problems == ["<retry/max_attempts> appears 2 times; give it once"]
