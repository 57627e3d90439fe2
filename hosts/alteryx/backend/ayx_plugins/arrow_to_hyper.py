"""Arrow types -> Hyper column types, and the Arrow cast that makes a batch match them.

Every column is NULLABLE. The mapping (what Designer sends, and what else an Arrow table can hold):

    int8, int16, uint8          SMALLINT        uint16, int32     INTEGER
    uint32, int64               BIGINT          uint64            refused (values above 2^63-1 fit no Hyper integer)
    float16, float32, float64   DOUBLE PRECISION
    decimal128/256(p, s)        NUMERIC(p, s); p <= 18 in the default file format (2),
                                p <= 38 with hyper_database_version 3 (Tableau Server 2023.1+)
    string, large_string, string_view, dictionary of strings        TEXT
    bool                        BOOLEAN
    date32                      DATE
    date64                      TIMESTAMP: milliseconds since 1970, and it can hold a time of day
                                (ayx-python-sdk maps Designer's DateTime to date64), which DATE
                                would drop
    timestamp[s|ms|us|ns]       TIMESTAMP; with a time zone TIMESTAMP WITH TIME ZONE (the instant,
                                in UTC); nanoseconds are truncated to Hyper's microseconds
    time32, time64              TIME (nanoseconds truncated to microseconds)
    null (a column of only nulls)                                   TEXT

Anything else (binary, lists, structs, maps, durations, intervals, extension types, ...) is
refused with the column's name, its type and what to do. Batches are cast to one target schema
(what the Parquet files staged for Hyper hold), so Hyper never has to convert.
"""
from dataclasses import dataclass

import pyarrow as pa
from tableauhyperapi import SqlType

# Hyper's NUMERIC: 64-bit up to 18 digits; 128-bit up to 38 digits from file format version 3.
NUMERIC_MAX_PRECISION = 18
NUMERIC128_MAX_PRECISION = 38
NUMERIC128_DATABASE_VERSION = 3


class UnsupportedSchema(Exception):
    """Columns Hyper cannot take, or a batch whose schema differs from the first one."""

    def __init__(self, problems, summary):
        self.problems = list(problems)
        super().__init__(summary + ": " + "; ".join(self.problems))


@dataclass(frozen=True)
class Column:
    name: str
    source: pa.DataType  # the type in the first batch
    target: pa.DataType  # the Arrow type it is cast to before staging
    hyper: SqlType  # the Hyper column type

    def describe(self):
        return f"{self.name} ({self.source} -> {self.hyper})"


@dataclass(frozen=True)
class Plan:
    """The Hyper table for a schema, and how to cast each batch to it."""

    columns: tuple
    target_schema: pa.Schema

    def hyper_types(self):
        return [str(c.hyper) for c in self.columns]


def plan(schema, database_version=2):
    """The Plan for an Arrow schema, or UnsupportedSchema naming every column Hyper cannot take."""
    problems = []
    columns = []
    seen = set()
    for field in schema:
        name = field.name
        if name in seen:
            problems.append(f'column "{name}" appears twice; rename one of them (Select tool)')
            continue
        seen.add(name)
        if name == "" or name.strip() != name:
            problems.append(
                f'column {_show(name)} has an empty name or one that starts or ends with spaces; rename it (Select tool)')
            continue
        mapped = _map(field.type, database_version, field.metadata)
        if isinstance(mapped, str):
            problems.append(f'column "{name}" has type {field.type}: {mapped}')
            continue
        target, hyper = mapped
        columns.append(Column(name, field.type, target, hyper))
    if not columns and not problems:
        problems.append("the input has no columns")
    if problems:
        raise UnsupportedSchema(problems, "the records cannot be written to a .hyper extract")
    return Plan(tuple(columns), pa.schema([pa.field(c.name, c.target) for c in columns]))


def mismatch(first, schema, database_version=2):
    """Why a later batch's schema cannot go into the table made for the first ([] if it can).

    Types that map to the same Hyper type are compatible (string and large_string, int8 and int16)."""
    names = [c.name for c in first.columns]
    if list(schema.names) != names:
        missing = [n for n in names if n not in schema.names]
        extra = [n for n in schema.names if n not in names]
        parts = []
        if missing:
            parts.append("missing " + ", ".join(f'"{n}"' for n in missing))
        if extra:
            parts.append("new " + ", ".join(f'"{n}"' for n in extra))
        if not parts:
            parts.append(f"columns in another order ({', '.join(schema.names)})")
        return ["; ".join(parts)]
    problems = []
    for column, field in zip(first.columns, schema):
        mapped = _map(field.type, database_version, field.metadata)
        if isinstance(mapped, str):
            problems.append(f'column "{field.name}" is now {field.type}: {mapped}')
        elif str(mapped[1]) != str(column.hyper):
            problems.append(
                f'column "{field.name}" is now {field.type} ({mapped[1]}), was {column.source} ({column.hyper})')
    return problems


def conform(table, plan):
    """The batch cast to the plan's target schema (a no-op for columns already of that type)."""
    arrays = []
    for column, array in zip(plan.columns, table.columns):
        if array.type != column.target:
            try:
                array = _cast(array, column.target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise UnsupportedSchema(
                    [f'column "{column.name}" has a value that does not fit {column.hyper} ({e}); '
                     f'widen the column upstream (Select tool)'],
                    "the records cannot be written to a .hyper extract") from None
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=plan.target_schema)


def _cast(array, target):
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    if array.type == target:
        return array
    # Hyper keeps microseconds: nanoseconds are truncated, as Tableau would show them anyway.
    truncating = (pa.types.is_timestamp(target) or pa.types.is_time(target))
    return array.cast(target, safe=not truncating)


def _map(t, database_version, metadata=None):
    """(target Arrow type, Hyper type), or a sentence saying why not and what to do. `metadata`:
    the Arrow field's, where Designer's own size and scale of a FixedDecimal are."""
    if pa.types.is_dictionary(t):
        if pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type):
            return pa.string(), SqlType.text()
        return _map(t.value_type, database_version)
    if pa.types.is_boolean(t):
        return pa.bool_(), SqlType.bool()
    if t in (pa.int8(), pa.int16(), pa.uint8()):
        return pa.int16(), SqlType.small_int()
    if t in (pa.int32(), pa.uint16()):
        return pa.int32(), SqlType.int()
    if t in (pa.int64(), pa.uint32()):
        return pa.int64(), SqlType.big_int()
    if t == pa.uint64():
        return ("unsigned 64-bit integers do not fit Hyper's largest integer (BIGINT, up to 2^63-1); "
                "convert the column to Int64 or Double upstream (Select tool)")
    if pa.types.is_floating(t):
        return pa.float64(), SqlType.double()
    if pa.types.is_decimal(t):
        return _map_decimal(_declared_decimal(t, metadata), database_version)
    if pa.types.is_string(t) or pa.types.is_large_string(t) or _is_string_view(t):
        return pa.string(), SqlType.text()
    if pa.types.is_null(t):
        return pa.string(), SqlType.text()
    if pa.types.is_date32(t):
        return pa.date32(), SqlType.date()
    if pa.types.is_date64(t):
        return pa.timestamp("us"), SqlType.timestamp()
    if pa.types.is_timestamp(t):
        if t.tz:
            return pa.timestamp("us", tz="UTC"), SqlType.timestamp_tz()
        return pa.timestamp("us"), SqlType.timestamp()
    if pa.types.is_time(t):
        return pa.time64("us"), SqlType.time()
    return f"Tableau extracts have no such column type; {_advice(t)}"


def _declared_decimal(t, metadata):
    """The decimal type a FixedDecimal field was declared with in Designer.

    ayx-python-sdk sends every FixedDecimal as decimal256(76, 36) and puts the field's Alteryx
    size and scale in its metadata (ayx.size, ayx.scale). The size counts characters: the
    digits, and the decimal point when the scale is not 0 (a sign takes a digit's place), so
    FixedDecimal 19.2 holds 18 digits, 2 after the point: NUMERIC(18, 2)."""
    try:
        size = int(metadata[b"ayx.size"])
        scale = int(metadata[b"ayx.scale"])
    except (TypeError, KeyError, ValueError):
        return t
    digits = size - (1 if scale > 0 else 0)
    if not 0 <= scale <= digits <= t.precision or scale > t.scale:
        return t  # not a declaration this type can carry: keep the Arrow type's
    return pa.decimal128(digits, scale) if digits <= 38 else pa.decimal256(digits, scale)


def _map_decimal(t, database_version):
    p, s = t.precision, t.scale
    if s < 0:
        return f"a negative scale ({s}) has no Hyper NUMERIC; convert the column to Double or Int64 upstream"
    limit = NUMERIC128_MAX_PRECISION if database_version >= NUMERIC128_DATABASE_VERSION else NUMERIC_MAX_PRECISION
    if p > limit:
        if limit == NUMERIC_MAX_PRECISION:
            return (f"Hyper's NUMERIC holds at most {NUMERIC_MAX_PRECISION} digits in the default file format; "
                    f"convert the column to FixedDecimal with at most {NUMERIC_MAX_PRECISION} digits or to Double "
                    f"upstream (Select tool), or set <hyper_database_version>3</hyper_database_version> for up to "
                    f"{NUMERIC128_MAX_PRECISION} digits (Tableau Server 2023.1 or later, Tableau Cloud)")
        return (f"Hyper's NUMERIC holds at most {NUMERIC128_MAX_PRECISION} digits; convert the column to "
                f"FixedDecimal with at most {NUMERIC128_MAX_PRECISION} digits or to Double upstream (Select tool)")
    return pa.decimal128(p, s), SqlType.numeric(p, s)


def _advice(t):
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "remove it (Select tool) or convert it to a string upstream (Blob Convert tool, Base64)"
    if pa.types.is_duration(t) or pa.types.is_interval(t):
        return "convert it to a number of seconds (Int64 or Double) upstream"
    if pa.types.is_nested(t):
        return "flatten it into columns of plain values upstream, or remove it (Select tool)"
    return "convert it to a string, number, date or time upstream, or remove it (Select tool)"


def _is_string_view(t):
    return getattr(pa.types, "is_string_view", lambda _t: False)(t)


def _show(name):
    return '"' + name + '"'
