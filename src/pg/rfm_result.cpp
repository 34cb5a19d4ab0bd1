#include "core/rfm.hpp"
#include "core/segments.hpp"
#include "pg/convert.hpp"
#include "pg/rfm_result.hpp"

namespace lifecycle::pg {

namespace {

void load_rules(RfmCache* cache, MemoryContext memory) {
    SPI_connect();
    SPI_execute("SELECT segment, r_low, r_high, f_low, f_high, m_low, m_high "
                "FROM lifecycle.rfm_segment_rules ORDER BY segment",
                true, 0);
    const int count = static_cast<int>(SPI_processed);
    if (count > kMaxSegmentRules)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("lifecycle.rfm_segment_rules has more than %d rules", kMaxSegmentRules)));
    SegmentBox boxes[kMaxSegmentRules];
    const char* names[kMaxSegmentRules];
    for (int i = 0; i < count; ++i) {
        HeapTuple row = SPI_tuptable->vals[i];
        TupleDesc desc = SPI_tuptable->tupdesc;
        bool isnull = false;
        int bound[6];
        for (int b = 0; b < 6; ++b) {
            Datum value = SPI_getbinval(row, desc, b + 2, &isnull);
            bound[b] = isnull ? 0 : DatumGetInt32(value);
        }
        boxes[i] = SegmentBox{bound[0], bound[1], bound[2], bound[3], bound[4], bound[5]};
        char* name = SPI_getvalue(row, desc, 1);
        names[i] = MemoryContextStrdup(memory, name ? name : "");
        cache->rule_name[i] = PointerGetDatum(
            MemoryContextAllocZero(memory, VARHDRSZ + strlen(names[i])));
        SET_VARSIZE(DatumGetPointer(cache->rule_name[i]), VARHDRSZ + strlen(names[i]));
        memcpy(VARDATA(DatumGetPointer(cache->rule_name[i])), names[i], strlen(names[i]));
    }
    SPI_finish();
    build_segment_grid(boxes, names, count, cache->grid);
}

void make_codes(RfmCache* cache, MemoryContext memory) {
    for (int r = 1; r <= 5; ++r)
        for (int f = 1; f <= 5; ++f)
            for (int m = 1; m <= 5; ++m) {
                char code[4];
                rfm_code(r, f, m, code);
                MemoryContext old = MemoryContextSwitchTo(memory);
                cache->code[segment_cell(r, f, m)] = CStringGetTextDatum(code);
                MemoryContextSwitchTo(old);
            }
}

}  // namespace

RfmCache* rfm_cache(FunctionCallInfo fcinfo) {
    if (fcinfo->flinfo->fn_extra != nullptr) return static_cast<RfmCache*>(fcinfo->flinfo->fn_extra);
    MemoryContext memory = fcinfo->flinfo->fn_mcxt;
    auto* cache = static_cast<RfmCache*>(MemoryContextAllocZero(memory, sizeof(RfmCache)));
    static const Oid columns[] = {INT4OID, INT4OID, INT4OID, TEXTOID, TEXTOID};
    TupleDesc desc = result_descriptor(fcinfo, columns, 5, "lifecycle.rfm");
    MemoryContext old = MemoryContextSwitchTo(memory);
    cache->result = BlessTupleDesc(CreateTupleDescCopy(desc));
    MemoryContextSwitchTo(old);
    load_rules(cache, memory);
    make_codes(cache, memory);
    fcinfo->flinfo->fn_extra = cache;
    return cache;
}

Datum rfm_row(const RfmCache* cache, int r, int f, int m) {
    Datum values[5];
    bool nulls[5] = {r == 0, f == 0, m == 0, true, true};
    values[0] = Int32GetDatum(r);
    values[1] = Int32GetDatum(f);
    values[2] = Int32GetDatum(m);
    if (r != 0 && f != 0 && m != 0) {
        const int cell = segment_cell(r, f, m);
        values[3] = cache->code[cell];
        values[4] = cache->rule_name[segment_rule(cache->grid, r, f, m)];
        nulls[3] = nulls[4] = false;
    }
    return HeapTupleGetDatum(heap_form_tuple(cache->result, values, nulls));
}

}  // namespace lifecycle::pg
