#include "core/segments.hpp"

#include <string>

#include "core/error.hpp"

namespace lifecycle {

namespace {

constexpr std::uint8_t kUnset = 0xff;

std::string cell_text(int r, int f, int m) {
    return "R=" + std::to_string(r) + " F=" + std::to_string(f) + " M=" + std::to_string(m);
}

void check_bounds(const SegmentBox& box, const char* name) {
    const int bounds[] = {box.r_low, box.r_high, box.f_low, box.f_high, box.m_low, box.m_high};
    for (int b : bounds)
        if (b < 1 || b > 5)
            throw_invalid(std::string("RFM segment rule \"") + name + "\" has a bound outside 1..5");
    if (box.r_low > box.r_high || box.f_low > box.f_high || box.m_low > box.m_high)
        throw_invalid(std::string("RFM segment rule \"") + name +
                      "\" has a low bound above its high bound");
}

void fill_box(const SegmentBox& box, int rule, const char* const* names, SegmentGrid& grid) {
    for (int r = box.r_low; r <= box.r_high; ++r)
        for (int f = box.f_low; f <= box.f_high; ++f)
            for (int m = box.m_low; m <= box.m_high; ++m) {
                std::uint8_t& cell = grid.rule_of_cell[segment_cell(r, f, m)];
                if (cell != kUnset)
                    throw_invalid("RFM segment rules overlap at " + cell_text(r, f, m) + ": \"" +
                                  names[cell] + "\" and \"" + names[rule] + "\"");
                cell = static_cast<std::uint8_t>(rule);
            }
}

}  // namespace

void build_segment_grid(const SegmentBox* boxes, const char* const* names, int count,
                        SegmentGrid& grid) {
    if (count > kMaxSegmentRules) throw_invalid("too many RFM segment rules (at most 254)");
    for (auto& cell : grid.rule_of_cell) cell = kUnset;
    for (int i = 0; i < count; ++i) {
        check_bounds(boxes[i], names[i]);
        fill_box(boxes[i], i, names, grid);
    }
    for (int r = 1; r <= 5; ++r)
        for (int f = 1; f <= 5; ++f)
            for (int m = 1; m <= 5; ++m)
                if (grid.rule_of_cell[segment_cell(r, f, m)] == kUnset)
                    throw_invalid("RFM segment rules leave " + cell_text(r, f, m) + " unnamed");
}

}  // namespace lifecycle
