// Named RFM segments from a rule table (lifecycle.rfm_segment_rules): each rule names a box
// of (R, F, M) scores. A rule table is usable only if it is total and non-overlapping:
// each of the 125 cells falls in exactly one box. The grid is checked once when loaded.
//
// Plain data in and out: the PostgreSQL layer caches the grid across calls in its own
// memory, where no C++ destructor would ever run.
#pragma once
#include "core/no_postgres.hpp"

#include <cstdint>

namespace lifecycle {

struct SegmentBox {
    int r_low, r_high, f_low, f_high, m_low, m_high;
};

constexpr int kSegmentCells = 125;
constexpr int kMaxSegmentRules = 254;

struct SegmentGrid {
    std::uint8_t rule_of_cell[kSegmentCells];  // index into the rules given to the builder
};

// Fills `grid` from `count` rules (names are used only in messages). Throws
// invalid_parameter naming the first cell that no rule or two rules cover, or a rule
// whose bounds are outside 1..5 or reversed.
void build_segment_grid(const SegmentBox* boxes, const char* const* names, int count,
                        SegmentGrid& grid);

inline int segment_cell(int r, int f, int m) { return ((r - 1) * 5 + (f - 1)) * 5 + (m - 1); }

inline int segment_rule(const SegmentGrid& grid, int r, int f, int m) {
    return grid.rule_of_cell[segment_cell(r, f, m)];
}

}  // namespace lifecycle
