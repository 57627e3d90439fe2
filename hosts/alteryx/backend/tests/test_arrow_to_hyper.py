"""Arrow -> Hyper type mapping, casts and schema checks (no hyperd)."""
import datetime as dt
import decimal

import pyarrow as pa
import pytest

from ayx_plugins.arrow_to_hyper import UnsupportedSchema, conform, mismatch, plan


@pytest.mark.parametrize("arrow, hyper", [
    (pa.int8(), "SMALL_INT"), (pa.uint8(), "SMALL_INT"), (pa.int16(), "SMALL_INT"),
    (pa.uint16(), "INT"), (pa.int32(), "INT"), (pa.uint32(), "BIG_INT"), (pa.int64(), "BIG_INT"),
    (pa.float16(), "DOUBLE"), (pa.float32(), "DOUBLE"), (pa.float64(), "DOUBLE"),
    (pa.decimal128(18, 4), "NUMERIC(18, 4)"), (pa.decimal256(10, 0), "NUMERIC(10, 0)"),
    (pa.string(), "TEXT"), (pa.large_string(), "TEXT"), (pa.dictionary(pa.int32(), pa.string()), "TEXT"),
    (pa.bool_(), "BOOL"), (pa.date32(), "DATE"), (pa.date64(), "TIMESTAMP"),
    (pa.timestamp("s"), "TIMESTAMP"), (pa.timestamp("ns"), "TIMESTAMP"),
    (pa.timestamp("us", tz="Europe/Berlin"), "TIMESTAMP_TZ"),
    (pa.time32("ms"), "TIME"), (pa.time64("ns"), "TIME"), (pa.null(), "TEXT"),
])
def test_mapping(arrow, hyper):
    assert plan(pa.schema([("c", arrow)])).hyper_types() == [hyper]


@pytest.mark.parametrize("arrow, words", [
    (pa.binary(), ["binary", "Blob Convert"]),
    (pa.list_(pa.int32()), ["list<item: int32>", "flatten"]),
    (pa.struct([("a", pa.int8())]), ["struct<a: int8>", "flatten"]),
    (pa.map_(pa.string(), pa.int8()), ["map<string, int8>"]),
    (pa.duration("s"), ["duration[s]", "number of seconds"]),
    (pa.uint64(), ["uint64", "Int64 or Double"]),
    (pa.decimal128(19, 2), ["decimal128(19, 2)", "at most 18 digits", "<hyper_database_version>3"]),
    (pa.decimal256(40, 2), ["decimal256(40, 2)"]),
])
def test_refused_types_name_the_column_type_and_fix(arrow, words):
    with pytest.raises(UnsupportedSchema) as e:
        plan(pa.schema([("ok", pa.int64()), ("bad col", arrow)]))
    message = str(e.value)
    assert message.startswith('the records cannot be written to a .hyper extract: column "bad col" has type ')
    for w in words:
        assert w in message


def test_wide_decimals_with_file_format_3():
    assert plan(pa.schema([("d", pa.decimal128(38, 10))]), database_version=3).hyper_types() == ["NUMERIC(38, 10)"]
    with pytest.raises(UnsupportedSchema, match="at most 38 digits"):
        plan(pa.schema([("d", pa.decimal256(39, 1))]), database_version=3)


def test_every_refused_column_at_once_and_duplicate_or_blank_names():
    schema = pa.schema([("a", pa.binary()), ("b", pa.list_(pa.int8())), ("a", pa.int8()), (" c", pa.int8())])
    with pytest.raises(UnsupportedSchema) as e:
        plan(schema)
    assert len(e.value.problems) == 4
    assert 'column "a" appears twice' in str(e.value)
    assert 'column " c" has an empty name' in str(e.value)
    with pytest.raises(UnsupportedSchema, match="no columns"):
        plan(pa.schema([]))


def test_conform_casts_to_the_staged_types():
    table = pa.table({
        "i8": pa.array([1, None], pa.int8()),
        "u32": pa.array([2**32 - 1, 0], pa.uint32()),
        "f32": pa.array([1.5, None], pa.float32()),
        "s": pa.array(["x", None], pa.large_string()),
        "dict": pa.array(["a", "b"]).dictionary_encode(),
        "d64": pa.array([dt.date(2024, 2, 29), None], pa.date64()),
        "d64_time": pa.array([86_400_000 + 3_600_000 + 123], pa.int64()).cast(pa.date64()).take([0, 0]),
        "ns": pa.array([dt.datetime(2024, 1, 1, 0, 0, 0, 123456), None], pa.timestamp("ns")),
        "tz": pa.array([dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), None], pa.timestamp("s", tz="Asia/Tokyo")),
        "t32": pa.array([dt.time(23, 59, 59), None], pa.time32("s")),
        "n": pa.nulls(2),
        "dec": pa.array([decimal.Decimal("1.50"), None], pa.decimal256(5, 2)),
    })
    p = plan(table.schema)
    out = conform(table, p)
    assert out.schema == p.target_schema
    assert out.column("u32").to_pylist() == [2**32 - 1, 0]
    assert out.column("d64").to_pylist() == [dt.datetime(2024, 2, 29), None]
    assert out.column("d64_time").to_pylist()[0] == dt.datetime(1970, 1, 2, 1, 0, 0, 123000)  # not cut to a date
    assert out.column("dict").to_pylist() == ["a", "b"]
    assert out.column("ns").to_pylist()[0] == dt.datetime(2024, 1, 1, 0, 0, 0, 123456)
    assert out.column("tz").type == pa.timestamp("us", tz="UTC")
    assert out.column("tz").to_pylist()[0] == dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    assert out.column("n").type == pa.string() and out.column("n").null_count == 2
    assert out.column("dec").to_pylist() == [decimal.Decimal("1.50"), None]


def test_nanoseconds_are_truncated_to_microseconds():
    table = pa.table({"t": pa.array([1_000_999], pa.timestamp("ns"))})
    assert conform(table, plan(table.schema)).column("t").cast(pa.int64()).to_pylist() == [1_000]


def test_later_schemas_must_map_to_the_same_table():
    first = plan(pa.schema([("a", pa.string()), ("b", pa.int16())]))
    assert mismatch(first, pa.schema([("a", pa.large_string()), ("b", pa.int8())])) == []
    assert mismatch(first, pa.schema([("a", pa.string()), ("b", pa.int64())])) == [
        'column "b" is now int64 (BIG_INT), was int16 (SMALL_INT)']
    assert mismatch(first, pa.schema([("a", pa.string())])) == ['missing "b"']
    assert mismatch(first, pa.schema([("b", pa.int16()), ("a", pa.string())])) == ["columns in another order (b, a)"]
    assert mismatch(first, pa.schema([("a", pa.string()), ("c", pa.int16())])) == ['missing "b"; new "c"']


def _fixed_decimal(name, size, scale):
    """A FixedDecimal field exactly as ayx-python-sdk builds it for Designer's records."""
    from ayx_python_sdk.core.field import Field, FieldType
    return Field(name, FieldType.fixeddecimal, size=size, scale=scale).to_arrow()


def test_designers_fixed_decimals_get_their_declared_size_and_scale():
    schema = pa.schema([_fixed_decimal("price", 19, 2), _fixed_decimal("count", 10, 0)])
    assert schema.field("price").type == pa.decimal256(76, 36), "what the SDK sends"
    p = plan(schema)
    assert p.hyper_types() == ["NUMERIC(18, 2)", "NUMERIC(10, 0)"]
    batch = pa.table({
        "price": pa.array([decimal.Decimal("-1234567890123456.78"), None], pa.decimal256(76, 36)),
        "count": pa.array([decimal.Decimal("9999999999"), decimal.Decimal("0")], pa.decimal256(76, 36)),
    }, schema=schema)
    out = conform(batch, p)
    assert out.column("price").to_pylist() == [decimal.Decimal("-1234567890123456.78"), None]
    assert out.column("count").to_pylist() == [decimal.Decimal("9999999999"), decimal.Decimal("0")]


def test_a_fixed_decimal_wider_than_hyper_takes_is_refused_with_the_fix():
    with pytest.raises(UnsupportedSchema) as e:
        plan(pa.schema([_fixed_decimal("big", 30, 4)]))
    assert '"big"' in str(e.value) and "<hyper_database_version>3" in str(e.value)
    assert plan(pa.schema([_fixed_decimal("big", 30, 4)]), database_version=3).hyper_types() == ["NUMERIC(29, 4)"]


def test_a_value_wider_than_its_declared_fixed_decimal_is_a_clear_error():
    schema = pa.schema([_fixed_decimal("price", 5, 2)])
    batch = pa.table({"price": pa.array([decimal.Decimal("123456.78")], pa.decimal256(76, 36))}, schema=schema)
    with pytest.raises(UnsupportedSchema) as e:
        conform(batch, plan(schema))
    assert '"price"' in str(e.value) and "NUMERIC(4, 2)" in str(e.value)
