#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/segments.hpp"

using lifecycle::SegmentBox;
using lifecycle::SegmentGrid;

namespace {

// The shipped grid, as in src/lifecycle.sql (lifecycle.rfm_default_segments).
const std::vector<std::pair<const char*, SegmentBox>> kDefault = {
    {"champions", {5, 5, 4, 5, 1, 5}},       {"loyal customers", {3, 4, 4, 5, 1, 5}},
    {"potential loyalists", {4, 5, 2, 3, 1, 5}}, {"new customers", {5, 5, 1, 1, 1, 5}},
    {"promising", {4, 4, 1, 1, 1, 5}},       {"need attention", {3, 3, 3, 3, 1, 5}},
    {"about to sleep", {3, 3, 1, 2, 1, 5}},  {"at risk", {1, 2, 3, 4, 1, 5}},
    {"can't lose them", {1, 2, 5, 5, 1, 5}}, {"hibernating", {2, 2, 1, 2, 1, 5}},
    {"lost", {1, 1, 1, 2, 1, 5}},
};

std::string build(const std::vector<std::pair<const char*, SegmentBox>>& rules, SegmentGrid& grid) {
    std::vector<SegmentBox> boxes;
    std::vector<const char*> names;
    for (const auto& rule : rules) {
        names.push_back(rule.first);
        boxes.push_back(rule.second);
    }
    try {
        lifecycle::build_segment_grid(boxes.data(), names.data(), static_cast<int>(rules.size()), grid);
        return "";
    } catch (const lifecycle::Error& e) {
        return e.what();
    }
}

std::string name_of(const SegmentGrid& grid, int r, int f, int m) {
    return kDefault[lifecycle::segment_rule(grid, r, f, m)].first;
}

}  // namespace

TEST(Segments, DefaultGridIsTotalAndNonOverlapping) {
    SegmentGrid grid;
    EXPECT_EQ(build(kDefault, grid), "");
    // Independently of the builder: count the boxes covering each cell.
    for (int r = 1; r <= 5; ++r)
        for (int f = 1; f <= 5; ++f)
            for (int m = 1; m <= 5; ++m) {
                int covering = 0;
                for (const auto& rule : kDefault) {
                    const SegmentBox& b = rule.second;
                    covering += r >= b.r_low && r <= b.r_high && f >= b.f_low && f <= b.f_high &&
                                m >= b.m_low && m <= b.m_high;
                }
                EXPECT_EQ(covering, 1) << "R=" << r << " F=" << f << " M=" << m;
            }
}

TEST(Segments, ClassicCells) {
    SegmentGrid grid;
    ASSERT_EQ(build(kDefault, grid), "");
    EXPECT_EQ(name_of(grid, 5, 5, 1), "champions");
    EXPECT_EQ(name_of(grid, 5, 1, 5), "new customers");
    EXPECT_EQ(name_of(grid, 1, 1, 3), "lost");
    EXPECT_EQ(name_of(grid, 2, 2, 3), "hibernating");
    EXPECT_EQ(name_of(grid, 2, 5, 3), "can't lose them");
    EXPECT_EQ(name_of(grid, 3, 3, 3), "need attention");
    EXPECT_EQ(name_of(grid, 4, 1, 2), "promising");
}

TEST(Segments, OverlapIsRefusedNamingTheCell) {
    auto rules = kDefault;
    rules.push_back({"extra", {3, 3, 3, 3, 2, 2}});
    SegmentGrid grid;
    const std::string message = build(rules, grid);
    EXPECT_NE(message.find("overlap at R=3 F=3 M=2"), std::string::npos) << message;
    EXPECT_NE(message.find("\"extra\""), std::string::npos) << message;
}

TEST(Segments, GapIsRefusedNamingTheCell) {
    auto rules = kDefault;
    rules.erase(rules.begin());  // no champions
    SegmentGrid grid;
    EXPECT_NE(build(rules, grid).find("leave R=5 F=4 M=1 unnamed"), std::string::npos);
    EXPECT_NE(build({}, grid).find("unnamed"), std::string::npos);
}

TEST(Segments, BadBoundsAreRefused) {
    SegmentGrid grid;
    EXPECT_NE(build({{"x", {0, 5, 1, 5, 1, 5}}}, grid).find("outside 1..5"), std::string::npos);
    EXPECT_NE(build({{"x", {1, 6, 1, 5, 1, 5}}}, grid).find("outside 1..5"), std::string::npos);
    EXPECT_NE(build({{"x", {3, 2, 1, 5, 1, 5}}}, grid).find("low bound above"), std::string::npos);
}

TEST(Segments, OneRuleCanCoverEverything) {
    SegmentGrid grid;
    EXPECT_EQ(build({{"everyone", {1, 5, 1, 5, 1, 5}}}, grid), "");
    EXPECT_EQ(lifecycle::segment_rule(grid, 3, 4, 5), 0);
}
