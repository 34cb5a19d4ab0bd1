// Reading a tracked orders table, and entering the engine on behalf of a table's owner.
// This file is where the engine's rights change hands, and the only place:
//
// - lifecycle._source_histories() reads a source AS ITS OWNER, in a security-restricted
//   operation with search_path = pg_catalog, pg_temp: the way PostgreSQL runs REFRESH
//   MATERIALIZED VIEW or ANALYZE. Whatever of the owner's code may run while the table is
//   read (row-level security policies, say) runs with the owner's rights, never the
//   engine's. The query is built here from lifecycle.sources, never taken from a caller,
//   and only after every tracked column has been checked against pg_attribute to still be
//   of the built-in type it had at track(): no cast, operator or domain CHECK of a user's
//   type runs at all.
//
// - lifecycle.track(), untrack() and resync() are gates: they check that the caller owns
//   the table (or is a member of its owner role), and only then run the engine's internal
//   function of the same name with a leading underscore as the extension's owner (whose
//   tables they write). A SECURITY DEFINER function could not check its caller's
//   ownership: inside it, the caller's identity is gone.
//
// Plain C-style code: PostgreSQL may longjmp out of any call here. A transaction or
// subtransaction that aborts restores the user id and the settings by itself.
#include "pg/compat.hpp"
#include "pg/guard.hpp"
#include "pg/trackable.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/tuplestore.h"
}

namespace {

constexpr long kFetchRows = 10000;

// The built-in types a tracked column may have, by its role in the source.
bool allowed_type(const char* kind, Oid type) {
    if (strcmp(kind, "customer") == 0)
        return type == INT2OID || type == INT4OID || type == INT8OID || type == TEXTOID ||
               type == VARCHAROID || type == UUIDOID;
    if (strcmp(kind, "time") == 0)
        return type == DATEOID || type == TIMESTAMPOID || type == TIMESTAMPTZOID;
    if (strcmp(kind, "amount") == 0)
        return type == INT2OID || type == INT4OID || type == INT8OID || type == NUMERICOID ||
               type == FLOAT4OID || type == FLOAT8OID;
    if (strcmp(kind, "watermark") == 0)
        return type == INT2OID || type == INT4OID || type == INT8OID;
    return false;
}

// What lifecycle.sources says of one source.
struct Source {
    Oid relid;
    char* customer_column;
    char* time_column;
    char* amount_column;  // nullptr: none
    Oid customer_type;
    Oid time_type;
    Oid amount_type;
    char* time_zone;
    char* watermark_column;  // nullptr: captured by triggers
    Oid watermark_type;
    char* watermark;  // the id up to which rows are counted, as int8 text
    Oid watermark_sequence;
};

char* text_column(HeapTuple row, TupleDesc desc, int column) {
    return SPI_getvalue(row, desc, column);  // NULL stays nullptr
}

Oid oid_column(HeapTuple row, TupleDesc desc, int column) {
    bool isnull;
    const Datum d = SPI_getbinval(row, desc, column, &isnull);
    return isnull ? InvalidOid : DatumGetObjectId(d);
}

// Whether lifecycle.sources has the watermark columns (0.3.0). The library is shared by
// every version installed in the cluster: a 0.2.0 database goes on working with it until
// ALTER EXTENSION UPDATE.
bool sources_have_watermark() {
    const Oid schema = get_namespace_oid("lifecycle", false);
    const Oid sources = get_relname_relid("sources", schema);
    return OidIsValid(sources) && get_attnum(sources, "watermark_column") != InvalidAttrNumber;
}

// Reads source `id` from lifecycle.sources (as the caller: the engine). Inside SPI.
Source load_source(int32 id) {
    Oid type = INT4OID;
    Datum value = Int32GetDatum(id);
    const char* watermark = sources_have_watermark()
        ? "watermark_column, watermark_type, watermark, watermark_sequence"
        : "NULL::name, NULL::regtype, NULL::bigint, NULL::regclass";
    const int rc = SPI_execute_with_args(
        psprintf("SELECT source, customer_column, time_column, amount_column, customer_type,"
                 " time_type, amount_type, time_zone, %s FROM lifecycle.sources WHERE id = $1",
                 watermark),
        1, &type, &value, nullptr, true, 1);
    if (rc != SPI_OK_SELECT) elog(ERROR, "lifecycle: reading lifecycle.sources failed: %d", rc);
    if (SPI_processed != 1)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("argument \"source_id\": no tracked source has id %d", id)));
    HeapTuple row = SPI_tuptable->vals[0];
    TupleDesc desc = SPI_tuptable->tupdesc;
    Source s;
    s.relid = oid_column(row, desc, 1);
    s.customer_column = text_column(row, desc, 2);
    s.time_column = text_column(row, desc, 3);
    s.amount_column = text_column(row, desc, 4);
    s.customer_type = oid_column(row, desc, 5);
    s.time_type = oid_column(row, desc, 6);
    s.amount_type = oid_column(row, desc, 7);
    s.time_zone = text_column(row, desc, 8);
    s.watermark_column = text_column(row, desc, 9);
    s.watermark_type = oid_column(row, desc, 10);
    s.watermark = text_column(row, desc, 11);
    s.watermark_sequence = oid_column(row, desc, 12);
    return s;
}

// The column `name` of the source must exist and still have the type and kind it had at
// track(); anything else is an ERROR before a row is read.
void check_column(Oid relid, const char* name, Oid tracked_type, const char* kind) {
    const AttrNumber attnum = get_attnum(relid, name);
    if (attnum == InvalidAttrNumber)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
                        errmsg("lifecycle: tracked table %s has no column \"%s\" any more",
                               get_rel_name(relid), name),
                        errhint("Untrack the table and track it again (lifecycle.untrack, "
                                "lifecycle.track).")));
    const Oid now = get_atttype(relid, attnum);
    if (now != tracked_type || !allowed_type(kind, now))
        ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                        errmsg("lifecycle: column \"%s\" of tracked table %s is of type %s, "
                               "not %s as when it was tracked",
                               name, get_rel_name(relid), format_type_be(now),
                               format_type_be(tracked_type)),
                        errhint("Untrack the table and track it again (lifecycle.untrack, "
                                "lifecycle.track).")));
}

// The relation must still be a plain table of its own: no partition and no inheritance
// child (rows written through its parent would not fire its statement triggers) and no
// inheritance children (their rows would not be captured). The rule is the one track()
// and the DDL guard apply (untrackable_reason, which reads pg_inherits: relhassubclass
// stays set after the last child is dropped, until an ANALYZE).
void check_relation(Oid relid) {
    const char* reason = lifecycle::pg::untrackable_reason(relid);
    if (reason == nullptr) return;
    if (strcmp(reason, "not a table") == 0 || strcmp(reason, "partitioned") == 0)
        ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                        errmsg("lifecycle: tracked relation %u is not a plain table any more",
                               relid)));
    if (strcmp(reason, "temporary") == 0)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("lifecycle: tracked table %s is a temporary table",
                               get_rel_name(relid)),
                        errhint("Untrack the table.")));
    if (strcmp(reason, "missing") == 0)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                        errmsg("lifecycle: tracked table %u was dropped", relid)));
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("lifecycle: tracked table %s is now a partition, an "
                           "inheritance child or parent", get_rel_name(relid)),
                    errhint("Untrack the table first.")));
}

// The purchase day of a row, as SQL over the time column.
char* day_sql(const Source& s) {
    const char* column = quote_identifier(s.time_column);
    if (s.time_type == DATEOID) return pstrdup(column);
    if (s.time_type == TIMESTAMPTZOID)
        return psprintf("(%s AT TIME ZONE %s)::date", column, quote_literal_cstr(s.time_zone));
    return psprintf("%s::date", column);
}

char* qualified_name(Oid relid) {
    return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
                                      get_rel_name(relid));
}

char* amount_sql(const Source& s) {
    return s.amount_column != nullptr
               ? psprintf("%s::double precision", quote_identifier(s.amount_column))
               : pstrdup("NULL::double precision");
}

// Why a row is left out of the computation (NULL: used), as SQL over its columns: the
// same text as lifecycle._reject_sql() in src/engine/capture.sql, which says why each
// reason and bound. Every read applies it, as the capture trigger does, so that a
// recomputation gives what the incremental path gives.
char* reject_sql(const Source& s) {
    StringInfoData sql;
    initStringInfo(&sql);
    appendStringInfoString(&sql, "CASE");
    if (s.customer_type == TEXTOID || s.customer_type == VARCHAROID)
        appendStringInfo(&sql, " WHEN octet_length(%s::text) > 1000 THEN 'customer_too_long'",
                         quote_identifier(s.customer_column));
    if (s.time_type == TIMESTAMPTZOID)
        appendStringInfo(&sql,
                         " WHEN NOT (%s BETWEEN '1400-01-02 00:00:00+00'::timestamptz"
                         " AND '9999-12-30 00:00:00+00'::timestamptz) THEN 'time_out_of_range'",
                         quote_identifier(s.time_column));
    else
        appendStringInfo(&sql,
                         " WHEN NOT (%s BETWEEN '1400-01-01'::date AND '9999-12-31'::date)"
                         " THEN 'time_out_of_range'",
                         day_sql(s));
    if (s.amount_column != nullptr) {
        const char* amount = quote_identifier(s.amount_column);
        if (s.amount_type == INT8OID) {
            appendStringInfo(&sql,
                             " WHEN NOT (%s BETWEEN -1000000000000000 AND 1000000000000000)"
                             " THEN 'amount_out_of_range'",
                             amount);
        } else if (s.amount_type == NUMERICOID || s.amount_type == FLOAT4OID ||
                   s.amount_type == FLOAT8OID) {
            const char* bound = s.amount_type == NUMERICOID ? "numeric" : "double precision";
            appendStringInfo(&sql,
                             " WHEN NOT (%s BETWEEN '-1e15'::%s AND '1e15'::%s)"
                             " THEN CASE WHEN %s::text IN ('NaN', 'Infinity', '-Infinity')"
                             " THEN 'amount_not_finite' ELSE 'amount_out_of_range' END",
                             amount, bound, bound, amount);
        }
    }
    appendStringInfoString(&sql, " END");
    return sql.data;
}

// Whether this database's lifecycle has rejected rows (0.3.0): a 0.2.0 database keeps
// its reads as they were until ALTER EXTENSION UPDATE.
bool rejects_known() {
    const Oid schema = get_namespace_oid("lifecycle", false);
    return OidIsValid(get_relname_relid("rejected_rows", schema));
}

// " AND (reason) IS NULL": the rows the engine uses (nothing on 0.2.0).
char* usable_filter(const Source& s) {
    return rejects_known() ? psprintf(" AND (%s) IS NULL", reject_sql(s)) : pstrdup("");
}

// The rows of the source (with `filter`, '' or a condition beginning with " AND ") that
// the engine leaves out, one row per reason: the source's id, the reason, one of its
// rows (the first 100 characters of the customer id, the amount as text) and how many:
// the same text as lifecycle._rejected_sql() in src/engine/capture.sql.
char* rejected_sql(const Source& s, int32 id, const char* filter) {
    const char* customer = quote_identifier(s.customer_column);
    const char* amount_text = s.amount_column == nullptr ? "NULL::text"
                              : s.amount_type == NUMERICOID
                                  ? "CASE WHEN length(a::text) <= 40 THEN a::text"
                                    " ELSE btrim(to_char(a, '9.999999EEEE')) END"
                                  : "a::text";
    const char* amount =
        s.amount_column == nullptr ? "NULL::text" : quote_identifier(s.amount_column);
    return psprintf(
        "SELECT %d, r, left(c, 100), %s, n"
        " FROM (SELECT c, a, r, row_number() OVER w AS i, count(*) OVER w AS n"
        " FROM (SELECT %s::text AS c, %s AS a, %s AS r FROM ONLY %s"
        " WHERE %s IS NOT NULL AND %s IS NOT NULL%s) AS o"
        " WHERE r IS NOT NULL WINDOW w AS (PARTITION BY r)) AS x"
        " WHERE i = 1",
        id, amount_text, customer, amount, reject_sql(s), qualified_name(s.relid), customer,
        quote_identifier(s.time_column), filter);
}

// Per customer and purchase day, the spend of the rows whose watermark column lies in
// ($1, $2]: what a watermark capture adds (the capture trigger's INSERT form, without the
// rows it leaves out).
char* new_orders_sql(const Source& s) {
    const char* customer = quote_identifier(s.customer_column);
    const char* id = quote_identifier(s.watermark_column);
    return psprintf(
        "SELECT c::text, d, sum(a)"
        " FROM (SELECT %s AS c, %s AS d, %s AS a FROM ONLY %s"
        "       WHERE %s > $1 AND %s <= $2 AND %s IS NOT NULL AND %s IS NOT NULL%s) AS o"
        " GROUP BY c, d",
        customer, day_sql(s), amount_sql(s), qualified_name(s.relid), id, id, customer,
        quote_identifier(s.time_column), usable_filter(s));
}

// The id of the $3-th row whose watermark column lies in ($1, $2], or $2 when there are
// fewer: how far one refresh may move the watermark (the new rows of a bulk load are
// taken a batch at a time, not in one tick).
char* id_cap_sql(const Source& s) {
    const char* id = quote_identifier(s.watermark_column);
    return psprintf("SELECT coalesce((SELECT %s FROM ONLY %s WHERE %s > $1 AND %s <= $2"
                    " ORDER BY %s OFFSET $3 - 1 LIMIT 1), $2)",
                    id, qualified_name(s.relid), id, id, id);
}

// Per customer (of `customers`, or all): purchase days up to $2 and their spend, the first
// day's spend (what the models leave out of the average order value), and the first order
// dated after $2; of the rows the engine uses (reject_sql), as the capture does.
char* histories_sql(const Source& s, bool all_customers) {
    const char* customer = quote_identifier(s.customer_column);
    const char* amount = amount_sql(s);
    const char* relation = qualified_name(s.relid);
    const char* filter =
        all_customers ? "" : psprintf(" AND %s = ANY ($1::%s[])", customer, format_type_be(s.customer_type));
    // A watermark source's rows above the watermark are not counted yet: the capture adds
    // them when it moves the watermark past them (the stage table reflects exactly the
    // rows up to it).
    if (s.watermark_column != nullptr)
        filter = psprintf("%s AND %s <= %s::bigint", filter, quote_identifier(s.watermark_column),
                          quote_literal_cstr(s.watermark != nullptr ? s.watermark : "0"));
    return psprintf(
        "SELECT c::text, min(d) FILTER (WHERE d <= $2), max(d) FILTER (WHERE d <= $2),"
        "       count(*) FILTER (WHERE d <= $2), sum(a) FILTER (WHERE d <= $2),"
        "       (array_agg(a ORDER BY d) FILTER (WHERE d <= $2))[1],"
        "       min(d) FILTER (WHERE d > $2)"
        " FROM (SELECT c, d, sum(a) AS a"
        "       FROM (SELECT %s AS c, %s AS d, %s AS a FROM ONLY %s"
        "             WHERE %s IS NOT NULL AND %s IS NOT NULL%s%s) AS o"
        "       GROUP BY c, d) AS days"
        " GROUP BY c",
        customer, day_sql(s), amount, relation, customer, quote_identifier(s.time_column), filter,
        usable_filter(s));
}

// The query's arguments.
struct Arguments {
    int count;
    Oid* types;
    Datum* values;
    const char* nulls;
};

// Runs `query` through a read-only cursor (the caller's snapshot) as the owner of
// `relid`, in a security-restricted operation with a safe search_path, and appends every
// row to `store` (whose columns the query's must match).
void read_as_owner(Oid relid, const char* query, const Arguments& args, Tuplestorestate* store,
                   TupleDesc store_desc) {
    HeapTuple class_row = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(class_row)) elog(ERROR, "lifecycle: relation %u is gone", relid);
    const Oid owner = reinterpret_cast<Form_pg_class>(GETSTRUCT(class_row))->relowner;
    ReleaseSysCache(class_row);

    Oid saved_user;
    int saved_context;
    GetUserIdAndSecContext(&saved_user, &saved_context);
    SetUserIdAndSecContext(owner, saved_context | SECURITY_LOCAL_USERID_CHANGE |
                                      SECURITY_RESTRICTED_OPERATION);
    const int nest_level = NewGUCNestLevel();
    lifecycle::pg::restrict_search_path();
    // The source's zone read as the capture trigger reads it, whatever abbreviations the
    // session running the engine has (AT TIME ZONE tries them before zone names).
    (void)set_config_option("timezone_abbreviations", "Default", PGC_USERSET, PGC_S_SESSION,
                            GUC_ACTION_SAVE, true, 0, false);

    Portal cursor = SPI_cursor_open_with_args(nullptr, query, args.count, args.types, args.values,
                                              args.nulls, true, 0);
    const int columns = store_desc->natts;
    Datum* row_values = static_cast<Datum*>(palloc(sizeof(Datum) * columns));
    bool* row_nulls = static_cast<bool*>(palloc(sizeof(bool) * columns));
    for (;;) {
        SPI_cursor_fetch(cursor, true, kFetchRows);
        if (SPI_processed == 0) break;
        for (uint64 i = 0; i < SPI_processed; ++i) {
            for (int c = 0; c < columns; ++c)
                row_values[c] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, c + 1,
                                              &row_nulls[c]);
            tuplestore_putvalues(store, store_desc, row_values, row_nulls);
        }
        SPI_freetuptable(SPI_tuptable);
    }
    SPI_cursor_close(cursor);

    AtEOXact_GUC(false, nest_level);
    SetUserIdAndSecContext(saved_user, saved_context);
}

// Source `id`, its table locked for reading (taken before the checks: no ALTER TABLE can
// change the columns between the check and the read) and every tracked column checked.
// Inside SPI.
Source checked_source(int32 id) {
    Source s = load_source(id);
    LockRelationOid(s.relid, AccessShareLock);
    if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(s.relid)))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                        errmsg("lifecycle: tracked table %u was dropped", s.relid)));
    check_relation(s.relid);
    check_column(s.relid, s.customer_column, s.customer_type, "customer");
    check_column(s.relid, s.time_column, s.time_type, "time");
    if (s.amount_column != nullptr) check_column(s.relid, s.amount_column, s.amount_type, "amount");
    if (s.watermark_column != nullptr)
        check_column(s.relid, s.watermark_column, s.watermark_type, "watermark");
    return s;
}

// checked_source(id), which must be tracked by a watermark.
Source checked_watermark_source(int32 id) {
    Source s = checked_source(id);
    if (s.watermark_column == nullptr)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("argument \"source_id\": source %d is not tracked by a watermark",
                               id)));
    return s;
}

Oid extension_owner() {
    const int rc = SPI_execute(
        "SELECT extowner FROM pg_catalog.pg_extension WHERE extname = 'lifecycle'", true, 1);
    if (rc != SPI_OK_SELECT || SPI_processed != 1) elog(ERROR, "lifecycle: extension not found");
    return oid_column(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

}  // namespace

// lifecycle._allowed_type(kind text, type regtype): whether a column of that type may be
// tracked as the source's 'customer', 'time' or 'amount'.
LIFECYCLE_FUNCTION(lifecycle_allowed_type) {
    char* kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
    PG_RETURN_BOOL(allowed_type(kind, PG_GETARG_OID(1)));
}

// lifecycle._source_histories(source_id integer, customers text[], as_of date): the
// purchase histories of the given customers (NULL: every customer) of tracked source
// `source_id`, read as the table's owner in the caller's snapshot.
LIFECYCLE_FUNCTION(lifecycle_source_histories) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(2))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("arguments \"source_id\" and \"as_of\" must not be NULL")));
    InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
    auto* result = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    const bool all_customers = PG_ARGISNULL(1);

    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "lifecycle: SPI_connect failed");
    Source s = checked_source(PG_GETARG_INT32(0));
    Oid types[2] = {TEXTARRAYOID, DATEOID};
    Datum values[2] = {all_customers ? (Datum)0 : PG_GETARG_DATUM(1), PG_GETARG_DATUM(2)};
    const char nulls[2] = {all_customers ? 'n' : ' ', ' '};
    read_as_owner(s.relid, histories_sql(s, all_customers), Arguments{2, types, values, nulls},
                  result->setResult, result->setDesc);
    SPI_finish();
    return (Datum)0;
}

// lifecycle._source_new_orders(source_id integer, after bigint, upto bigint): per customer
// and purchase day, the spend of the rows of watermark source `source_id` whose id lies
// in (after, upto], read as the table's owner in the caller's snapshot.
LIFECYCLE_FUNCTION(lifecycle_source_new_orders) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("arguments \"source_id\", \"after\" and \"upto\" must not be NULL")));
    InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
    auto* result = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "lifecycle: SPI_connect failed");
    Source s = checked_watermark_source(PG_GETARG_INT32(0));
    Oid types[2] = {INT8OID, INT8OID};
    Datum values[2] = {PG_GETARG_DATUM(1), PG_GETARG_DATUM(2)};
    read_as_owner(s.relid, new_orders_sql(s), Arguments{2, types, values, nullptr},
                  result->setResult, result->setDesc);
    SPI_finish();
    return (Datum)0;
}

// lifecycle._source_rejected(source_id integer, after bigint, upto bigint): the rows of
// tracked source `source_id` that the engine leaves out, one row per reason (see
// rejected_sql): of a watermark source, those whose id lies in (after, upto]; with both
// NULL, every row the stage table would count (a watermark source's up to its
// watermark). Read as the table's owner in the caller's snapshot.
LIFECYCLE_FUNCTION(lifecycle_source_rejected) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1) != PG_ARGISNULL(2))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("argument \"source_id\" must not be NULL, and \"after\" and "
                               "\"upto\" must be both NULL or neither")));
    InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
    auto* result = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    const bool range = !PG_ARGISNULL(1);
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "lifecycle: SPI_connect failed");
    const int32 id = PG_GETARG_INT32(0);
    Source s = range ? checked_watermark_source(id) : checked_source(id);
    const char* filter = "";
    if (range) {
        const char* column = quote_identifier(s.watermark_column);
        filter = psprintf(" AND %s > $1 AND %s <= $2", column, column);
    } else if (s.watermark_column != nullptr) {
        filter = psprintf(" AND %s <= %s::bigint", quote_identifier(s.watermark_column),
                          quote_literal_cstr(s.watermark != nullptr ? s.watermark : "0"));
    }
    Oid types[2] = {INT8OID, INT8OID};
    Datum values[2] = {range ? PG_GETARG_DATUM(1) : (Datum)0, range ? PG_GETARG_DATUM(2) : (Datum)0};
    const char nulls[2] = {range ? ' ' : 'n', range ? ' ' : 'n'};
    read_as_owner(s.relid, rejected_sql(s, id, filter), Arguments{2, types, values, nulls},
                  result->setResult, result->setDesc);
    SPI_finish();
    return (Datum)0;
}

// lifecycle._source_id_cap(source_id integer, after bigint, upto bigint, n bigint): the
// id of the n-th row above `after` (at most `upto`) of watermark source `source_id`,
// read as the table's owner.
LIFECYCLE_FUNCTION(lifecycle_source_id_cap) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3) ||
        PG_GETARG_INT64(3) < 1)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("arguments \"source_id\", \"after\", \"upto\" and \"n\" must not "
                               "be NULL, and \"n\" must be at least 1")));
    InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
    auto* result = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "lifecycle: SPI_connect failed");
    Source s = checked_watermark_source(PG_GETARG_INT32(0));
    Oid types[3] = {INT8OID, INT8OID, INT8OID};
    Datum values[3] = {PG_GETARG_DATUM(1), PG_GETARG_DATUM(2), PG_GETARG_DATUM(3)};
    read_as_owner(s.relid, id_cap_sql(s), Arguments{3, types, values, nullptr}, result->setResult,
                  result->setDesc);
    SPI_finish();
    return (Datum)0;
}

// lifecycle._sequence_position(source_id integer): the last value handed out by the
// sequence of watermark source `source_id` (NULL before the first), read as the owner of
// the table, who owns the sequence of its identity or serial column: the engine's roles
// have no right to it. Every id up to it was taken by a transaction that has ended or
// holds a lock on the sequence now (nextval keeps one to the end of its transaction).
LIFECYCLE_FUNCTION(lifecycle_sequence_position) {
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("argument \"source_id\" must not be NULL")));
    InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
    auto* result = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "lifecycle: SPI_connect failed");
    Source s = load_source(PG_GETARG_INT32(0));
    if (!OidIsValid(s.watermark_sequence))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("argument \"source_id\": source %d is not tracked by a watermark",
                               PG_GETARG_INT32(0))));
    Oid types[1] = {REGCLASSOID};
    Datum values[1] = {ObjectIdGetDatum(s.watermark_sequence)};
    read_as_owner(s.relid, "SELECT pg_catalog.pg_sequence_last_value($1)",
                  Arguments{1, types, values, nullptr}, result->setResult, result->setDesc);
    SPI_finish();
    return (Datum)0;
}

// lifecycle.track(), untrack(), resync(): the caller must own the table in the first
// argument; then lifecycle._<name>(same arguments) runs as the extension's owner.
LIFECYCLE_FUNCTION(lifecycle_owner_gate) {
    const Oid function = fcinfo->flinfo->fn_oid;
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("argument \"source\" must not be NULL")));
    const Oid relid = PG_GETARG_OID(0);
    if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                        errmsg("argument \"source\": relation %u does not exist", relid)));
    if (!lifecycle::pg::owns_relation(relid, GetUserId()))
        ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                        errmsg("must be owner of table %s to %s it", get_rel_name(relid),
                               get_func_name(function)),
                        errhint("Only a table's owner, a member of the owning role, or a "
                                "superuser can track, untrack or resync it.")));
    Oid* arg_types;
    int nargs;
    const Oid result_type = get_func_signature(function, &arg_types, &nargs);
    StringInfoData query;
    initStringInfo(&query);
    appendStringInfo(&query, "SELECT lifecycle.%s(",
                     quote_identifier(psprintf("_%s", get_func_name(function))));
    Datum* values = static_cast<Datum*>(palloc(sizeof(Datum) * (nargs + 1)));
    char* nulls = static_cast<char*>(palloc(nargs + 1));
    for (int i = 0; i < nargs; ++i) {
        appendStringInfo(&query, "%s$%d", i > 0 ? ", " : "", i + 1);
        values[i] = PG_ARGISNULL(i) ? (Datum)0 : PG_GETARG_DATUM(i);
        nulls[i] = PG_ARGISNULL(i) ? 'n' : ' ';
    }
    appendStringInfoChar(&query, ')');

    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "lifecycle: SPI_connect failed");
    const Oid owner = extension_owner();
    Oid saved_user;
    int saved_context;
    GetUserIdAndSecContext(&saved_user, &saved_context);
    // As the owner, the way core runs a table owner's code for REFRESH MATERIALIZED VIEW
    // or ANALYZE: in a security-restricted operation (no SET ROLE, no WITH HOLD cursor, no
    // temporary table), with search_path = pg_catalog, pg_temp, and whatever settings the
    // work changed put back afterwards. The engine's scratch tables are temporary, so,
    // as REFRESH MATERIALIZED VIEW CONCURRENTLY does for its diff table, they are made
    // ready first, out of the restricted operation: lifecycle._work_table() runs nothing
    // of the caller's (built-in types only), and uses a table of that name only if the
    // owner owns it (lifecycle._scratch_ready): the caller can plant a table there, but
    // not one the owner owns.
    SetUserIdAndSecContext(owner, saved_context | SECURITY_LOCAL_USERID_CHANGE);
    const int nest_level = NewGUCNestLevel();
    lifecycle::pg::restrict_search_path();
    if (SPI_execute("SELECT lifecycle._work_table()", false, 1) != SPI_OK_SELECT)
        elog(ERROR, "lifecycle: lifecycle._work_table() failed");
    SetUserIdAndSecContext(owner, saved_context | SECURITY_LOCAL_USERID_CHANGE |
                                      SECURITY_RESTRICTED_OPERATION);
    const int rc = SPI_execute_with_args(query.data, nargs, arg_types, values, nulls, false, 1);
    if (rc != SPI_OK_SELECT || SPI_processed != 1) elog(ERROR, "lifecycle: %s failed", query.data);
    bool isnull;
    Datum result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
    AtEOXact_GUC(false, nest_level);
    SetUserIdAndSecContext(saved_user, saved_context);
    if (!isnull && result_type != VOIDOID) {
        int16 length;
        bool by_value;
        get_typlenbyval(result_type, &length, &by_value);
        result = SPI_datumTransfer(result, by_value, length);
    }
    SPI_finish();
    if (isnull || result_type == VOIDOID) PG_RETURN_NULL();
    return result;
}
