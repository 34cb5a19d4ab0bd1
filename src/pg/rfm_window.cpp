// rfm_score(recency, frequency, monetary) OVER (PARTITION BY ...): the window function.
//
// On the first row of a partition it reads the whole partition once, ranks the three
// measures in the core (one sort each), and keeps three one-byte scores per row in the
// partition's local memory; every row then just looks its scores up. Three SQL rank()
// windows need three sorts of the rows themselves, and a WindowAgg node for each.
#include <cstdint>

#include "core/interrupt.hpp"
#include "core/rfm.hpp"
#include "pg/guard.hpp"
#include "pg/rfm_result.hpp"

using lifecycle::Measure;

namespace {

struct PartitionScores {
    bool ready;
    int64 rows;
    uint8 score[FLEXIBLE_ARRAY_MEMBER];  // 3 per row, 0 for a NULL measure
};

// One measure of the partition: goodness by row, and the sorted non-NULL values.
struct MeasureColumn {
    double* by_row;
    bool* is_null;
    double* sorted;
    int64 count;
};

void read_measure(WindowObject window, Measure measure, int64 rows, MeasureColumn* column) {
    const int argno = static_cast<int>(measure);
    column->by_row = static_cast<double*>(MemoryContextAllocHuge(CurrentMemoryContext, rows * sizeof(double)));
    column->is_null = static_cast<bool*>(MemoryContextAllocHuge(CurrentMemoryContext, rows * sizeof(bool)));
    column->sorted = static_cast<double*>(MemoryContextAllocHuge(CurrentMemoryContext, rows * sizeof(double)));
    column->count = 0;
    for (int64 row = 0; row < rows; ++row) {
        lifecycle::check_interrupts_every(static_cast<uint64>(row));
        bool isnull = false, isout = false;
        Datum value = WinGetFuncArgInPartition(window, argno, row, WINDOW_SEEK_HEAD, false, &isnull, &isout);
        column->is_null[row] = isnull;
        if (isnull) continue;
        const double raw = DatumGetFloat8(value);
        lifecycle::check_measure(measure, raw);
        column->by_row[row] = lifecycle::goodness(measure, raw);
        column->sorted[column->count++] = column->by_row[row];
    }
}

// Reads and ranks the partition; called on its first row, in per-call memory.
void score_partition(WindowObject window, PartitionScores* scores) {
    for (int d = 0; d < lifecycle::kMeasureCount; ++d) {
        MeasureColumn column;
        read_measure(window, static_cast<Measure>(d), scores->rows, &column);
        lifecycle::sort_population(column.sorted, column.count);
        for (int64 row = 0; row < scores->rows; ++row) {
            lifecycle::check_interrupts_every(static_cast<uint64>(row));
            uint8 score = 0;
            if (!column.is_null[row]) {
                const int64 worse = lifecycle::worse_count(column.sorted, column.count, column.by_row[row]);
                score = static_cast<uint8>(lifecycle::score_from_worse_count(worse, column.count));
            }
            scores->score[row * 3 + d] = score;
        }
        pfree(column.by_row);
        pfree(column.is_null);
        pfree(column.sorted);
    }
    scores->ready = true;
}

}  // namespace

LIFECYCLE_FUNCTION(lifecycle_rfm_window) {
    WindowObject window = PG_WINDOW_OBJECT();
    lifecycle::pg::RfmCache* cache = lifecycle::pg::rfm_cache(fcinfo);
    const int64 rows = WinGetPartitionRowCount(window);
    auto* scores = static_cast<PartitionScores*>(
        WinGetPartitionLocalMemory(window, offsetof(PartitionScores, score) + rows * 3));
    if (!scores->ready) {
        scores->rows = rows;
        score_partition(window, scores);
    }
    const int64 row = WinGetCurrentPosition(window);
    const uint8* s = &scores->score[row * 3];
    return lifecycle::pg::rfm_row(cache, s[0], s[1], s[2]);
}
