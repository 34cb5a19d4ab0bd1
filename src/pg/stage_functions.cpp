// lifecycle_stage(): the stage of one customer, as the enum lifecycle.stage.
#include "core/calendar.hpp"
#include "core/policy.hpp"
#include "core/stage.hpp"
#include "pg/convert.hpp"
#include "pg/guard.hpp"

using lifecycle::Day;
using lifecycle::History;
using lifecycle::Policy;
using lifecycle::Stage;

namespace {

// Per call site: the enum's label OIDs (looked up once) and the last policy used.
struct StageCache {
    Oid label[lifecycle::kStageCount];
    lifecycle::pg::PolicyCache policy;
};

StageCache* stage_cache(FunctionCallInfo fcinfo) {
    if (fcinfo->flinfo->fn_extra == nullptr) {
        auto* cache = static_cast<StageCache*>(
            MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(StageCache)));
        Oid type = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum("stage"),
                                   ObjectIdGetDatum(lifecycle::pg::extension_namespace()));
        for (int i = 0; i < lifecycle::kStageCount; ++i) {
            const char* label = lifecycle::stage_name(static_cast<Stage>(i));
            cache->label[i] = GetSysCacheOid2(ENUMTYPOIDNAME, Anum_pg_enum_oid,
                                              ObjectIdGetDatum(type), CStringGetDatum(label));
            if (!OidIsValid(cache->label[i]))
                elog(ERROR, "lifecycle.stage has no label \"%s\"", label);
        }
        fcinfo->flinfo->fn_extra = cache;
    }
    return static_cast<StageCache*>(fcinfo->flinfo->fn_extra);
}

Datum stage_datum(FunctionCallInfo fcinfo, Stage stage) {
    return ObjectIdGetDatum(stage_cache(fcinfo)->label[static_cast<int>(stage)]);
}

// Arguments 0..3 are (first, last, n, as_of). Both dates NULL: a prospect. Exactly one
// NULL: bad input. Returns false when another argument is NULL (the result is NULL).
bool read_history(FunctionCallInfo fcinfo, History* history, Day* as_of, bool* prospect) {
    const bool no_first = PG_ARGISNULL(0), no_last = PG_ARGISNULL(1);
    *prospect = no_first && no_last;
    if (*prospect) return true;
    if (no_first || no_last)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("argument \"%s\" is NULL but \"%s\" is not",
                               no_first ? "first" : "last", no_first ? "last" : "first"),
                        errhint("Pass both dates, or neither for a customer with no purchase.")));
    if (PG_ARGISNULL(2) || PG_ARGISNULL(3)) return false;
    history->first = lifecycle::pg::to_day(PG_GETARG_DATEADT(0), "first");
    history->last = lifecycle::pg::to_day(PG_GETARG_DATEADT(1), "last");
    history->purchases = PG_GETARG_INT64(2);
    *as_of = lifecycle::pg::to_day(PG_GETARG_DATEADT(3), "as_of");
    return true;
}

// Where the windows come from: the arguments or a named policy. NULL when an argument
// they need is NULL (the stage is then NULL).
using PolicySource = const Policy* (*)(FunctionCallInfo fcinfo, Policy* scratch);

const Policy* policy_from_arguments(FunctionCallInfo fcinfo, Policy* scratch) {
    for (int i = 4; i < 10; ++i)
        if (PG_ARGISNULL(i)) return nullptr;
    scratch->onboarding_days = PG_GETARG_INT32(4);
    scratch->at_risk_days = PG_GETARG_INT32(5);
    scratch->inactive_days = PG_GETARG_INT32(6);
    scratch->lapsed_days = PG_GETARG_INT32(7);
    scratch->rhythm_factor = PG_GETARG_FLOAT8(8);
    scratch->rhythm_min_purchases = PG_GETARG_INT32(9);
    lifecycle::validate(*scratch);
    return scratch;
}

const Policy* policy_by_name(FunctionCallInfo fcinfo, Policy*) {
    if (PG_ARGISNULL(4)) return nullptr;
    return &lifecycle::pg::cached_policy(&stage_cache(fcinfo)->policy, PG_GETARG_TEXT_PP(4));
}

Datum stage_of(FunctionCallInfo fcinfo, PolicySource source) {
    History history;
    Day as_of;
    bool prospect;
    if (!read_history(fcinfo, &history, &as_of, &prospect)) PG_RETURN_NULL();
    if (prospect) return stage_datum(fcinfo, lifecycle::stage_without_purchases());
    Policy scratch;
    const Policy* policy = source(fcinfo, &scratch);
    if (policy == nullptr) PG_RETURN_NULL();
    return stage_datum(fcinfo, lifecycle::classify(history, as_of, *policy));
}

}  // namespace

// lifecycle_stage(first, last, n, as_of, onboarding_days, at_risk_days, inactive_days,
//                 lapsed_days, rhythm_factor, rhythm_min_purchases): IMMUTABLE.
LIFECYCLE_FUNCTION(lifecycle_stage_windows) { return stage_of(fcinfo, policy_from_arguments); }

// lifecycle_stage(first, last, n, as_of, policy text): STABLE, reads lifecycle.policies.
LIFECYCLE_FUNCTION(lifecycle_stage_policy) { return stage_of(fcinfo, policy_by_name); }

// next_stage_change(first, last, n, as_of, policy text): the first day after as_of on
// which the stage changes if nothing is bought; NULL when it never does (or for a
// prospect, or a NULL argument). STABLE, like the policy form of lifecycle_stage.
LIFECYCLE_FUNCTION(lifecycle_next_stage_change) {
    History history;
    Day as_of;
    bool prospect;
    if (!read_history(fcinfo, &history, &as_of, &prospect) || prospect) PG_RETURN_NULL();
    Policy scratch;
    const Policy* policy = policy_by_name(fcinfo, &scratch);
    if (policy == nullptr) PG_RETURN_NULL();
    const auto next = lifecycle::next_change(history, as_of, *policy);
    if (!next) PG_RETURN_NULL();
    PG_RETURN_DATEADT(static_cast<DateADT>(*next));
}
