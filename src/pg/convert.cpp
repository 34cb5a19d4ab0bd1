#include <cmath>
#include <cstring>

#include "core/calendar.hpp"
#include "core/policy.hpp"
#include "pg/convert.hpp"

namespace lifecycle::pg {

Day to_day(DateADT date, const char* argument) {
    if (DATE_NOT_FINITE(date))
        ereport(ERROR, (errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
                        errmsg("argument \"%s\" must be a finite date", argument)));
    return static_cast<Day>(date);
}

double finite_arg(double value, const char* argument) {
    if (!std::isfinite(value))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("argument \"%s\" must be a finite number", argument)));
    return value;
}

TupleDesc result_descriptor(FunctionCallInfo fcinfo, const Oid* types, int count, const char* type_name) {
    TupleDesc desc;
    if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
        elog(ERROR, "lifecycle: function must return the composite type %s", type_name);
    bool matches = desc->natts == count;
    for (int i = 0; matches && i < count; ++i) {
        const Form_pg_attribute column = TupleDescAttr(desc, i);
        matches = !column->attisdropped && column->atttypid == types[i];
    }
    if (!matches)
        ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                        errmsg("type %s does not have the columns this version of lifecycle fills", type_name),
                        errhint("The extension's types must not be altered; recreate the extension.")));
    return BlessTupleDesc(desc);
}

Oid extension_namespace() { return get_namespace_oid("lifecycle", false); }

namespace {

int32 int_column(HeapTuple row, TupleDesc desc, int column, const char* name, const char* policy) {
    bool isnull = false;
    Datum value = SPI_getbinval(row, desc, column, &isnull);
    if (isnull)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("policy \"%s\" has no value for \"%s\"", policy, name)));
    return DatumGetInt32(value);
}

}  // namespace

Policy lookup_policy(const char* name) {
    static const char* const query =
        "SELECT onboarding_days, at_risk_days, inactive_days, lapsed_days, "
        "rhythm_factor, rhythm_min_purchases FROM lifecycle.policies WHERE name = $1";
    Oid argtype = TEXTOID;
    Datum arg = CStringGetTextDatum(name);
    Policy policy;
    SPI_connect();
    SPI_execute_with_args(query, 1, &argtype, &arg, nullptr, true, 1);
    if (SPI_processed == 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("argument \"policy\": policy \"%s\" does not exist", name),
                        errhint("The policies are the rows of lifecycle.policies.")));
    HeapTuple row = SPI_tuptable->vals[0];
    TupleDesc desc = SPI_tuptable->tupdesc;
    policy.onboarding_days = int_column(row, desc, 1, "onboarding_days", name);
    policy.at_risk_days = int_column(row, desc, 2, "at_risk_days", name);
    policy.inactive_days = int_column(row, desc, 3, "inactive_days", name);
    policy.lapsed_days = int_column(row, desc, 4, "lapsed_days", name);
    bool isnull = false;
    Datum factor = SPI_getbinval(row, desc, 5, &isnull);
    policy.rhythm_factor = isnull ? 0.0 : DatumGetFloat8(factor);
    policy.rhythm_min_purchases = int_column(row, desc, 6, "rhythm_min_purchases", name);
    SPI_finish();
    validate(policy);
    return policy;
}

const Policy& cached_policy(PolicyCache* cache, text* name) {
    // Compared in place, without a palloc: this runs once per row.
    const size_t length = VARSIZE_ANY_EXHDR(name);
    const char* bytes = VARDATA_ANY(name);
    for (CachedPolicy& entry : cache->entry)
        if (entry.valid && strlen(entry.name) == length && memcmp(entry.name, bytes, length) == 0)
            return entry.policy;
    if (length > kPolicyNameMax)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("argument \"policy\" is too long (at most %d bytes)", kPolicyNameMax)));
    char* wanted = text_to_cstring(name);
    CachedPolicy& entry = cache->entry[cache->next_victim];
    cache->next_victim = (cache->next_victim + 1) % kCachedPolicies;
    entry.valid = false;
    entry.policy = lookup_policy(wanted);
    strcpy(entry.name, wanted);
    entry.valid = true;
    pfree(wanted);
    return entry.policy;
}

}  // namespace lifecycle::pg
