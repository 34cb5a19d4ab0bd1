#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
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

namespace {

using Rules = std::vector<std::pair<std::string, SegmentBox>>;

// The default rules as the extension ships them: read from the INSERT INTO
// lifecycle.rfm_default_segments in src/lifecycle.sql (M bounds default to 1..5 there).
Rules rules_from_sql() {
    std::string path = __FILE__;
    path = path.substr(0, path.rfind('/')) + "/../../src/lifecycle.sql";
    std::ifstream in(path);
    if (!in) {
        ADD_FAILURE() << "cannot open " << path;
        return {};
    }
    std::stringstream buffer;
    buffer << in.rdbuf();
    const std::string sql = buffer.str();
    const std::string marker = "INSERT INTO lifecycle.rfm_default_segments";
    std::size_t at = sql.find(marker);
    if (at == std::string::npos || sql.find(marker, at + 1) != std::string::npos) {
        ADD_FAILURE() << "expected exactly one " << marker << " in " << path;
        return {};
    }
    // Column list.
    std::size_t open = sql.find('(', at), close = sql.find(')', open);
    std::vector<std::string> columns;
    {
        std::stringstream list(sql.substr(open + 1, close - open - 1));
        std::string column;
        while (std::getline(list, column, ',')) {
            column.erase(0, column.find_first_not_of(" \n"));
            column.erase(column.find_last_not_of(" \n") + 1);
            columns.push_back(column);
        }
    }
    const std::size_t end = sql.find(';', close);
    Rules rules;
    std::size_t pos = sql.find("VALUES", close);
    while ((pos = sql.find('(', pos)) != std::string::npos && pos < end) {
        std::size_t i = pos + 1;
        std::vector<std::string> values;
        std::string value;
        bool quoted = false;
        for (; i < sql.size(); ++i) {
            const char c = sql[i];
            if (quoted) {
                if (c == '\'' && sql[i + 1] == '\'') { value += '\''; ++i; }
                else if (c == '\'') quoted = false;
                else value += c;
            } else if (c == '\'') {
                quoted = true;
            } else if (c == ',' || c == ')') {
                values.push_back(value);
                value.clear();
                if (c == ')') break;
            } else if (c != ' ' && c != '\n') {
                value += c;
            }
        }
        pos = i + 1;
        if (values.size() != columns.size()) {
            ADD_FAILURE() << "a row of " << values.size() << " values for " << columns.size() << " columns";
            return {};
        }
        std::string name;
        SegmentBox box{0, 0, 0, 0, 1, 5};
        for (std::size_t c = 0; c < columns.size(); ++c) {
            const std::string& col = columns[c];
            if (col == "segment") { name = values[c]; continue; }
            const int v = std::stoi(values[c]);
            if (col == "r_low") box.r_low = v;
            else if (col == "r_high") box.r_high = v;
            else if (col == "f_low") box.f_low = v;
            else if (col == "f_high") box.f_high = v;
            else if (col == "m_low") box.m_low = v;
            else if (col == "m_high") box.m_high = v;
            else ADD_FAILURE() << "unknown column " << col;
        }
        rules.push_back({name, box});
    }
    return rules;
}

std::string build_rules(const Rules& rules, SegmentGrid& grid) {
    std::vector<SegmentBox> boxes;
    std::vector<const char*> names;
    for (const auto& rule : rules) {
        names.push_back(rule.first.c_str());
        boxes.push_back(rule.second);
    }
    try {
        lifecycle::build_segment_grid(boxes.data(), names.data(), static_cast<int>(rules.size()), grid);
        return "";
    } catch (const lifecycle::Error& e) {
        EXPECT_EQ(e.kind(), lifecycle::ErrorKind::invalid_parameter);
        return e.what();
    }
}

bool covers(const SegmentBox& b, int r, int f, int m) {
    return r >= b.r_low && r <= b.r_high && f >= b.f_low && f <= b.f_high && m >= b.m_low && m <= b.m_high;
}

std::string cell(int r, int f, int m) {
    return "R=" + std::to_string(r) + " F=" + std::to_string(f) + " M=" + std::to_string(m);
}

}  // namespace

// The grid the extension ships (read from src/lifecycle.sql, not copied): the brief's 11
// names, and every one of the 125 cells covered by exactly one rule, counted by brute force.
TEST(Segments, ShippedGridFromTheSqlIsTotalAndNonOverlapping) {
    const Rules rules = rules_from_sql();
    ASSERT_EQ(rules.size(), 11u);
    std::set<std::string> names;
    for (const auto& rule : rules) names.insert(rule.first);
    const std::set<std::string> brief = {"champions", "loyal customers", "potential loyalists",
                                         "new customers", "promising", "need attention",
                                         "about to sleep", "at risk", "can't lose them",
                                         "hibernating", "lost"};
    EXPECT_EQ(names, brief);
    SegmentGrid grid;
    ASSERT_EQ(build_rules(rules, grid), "");
    for (int r = 1; r <= 5; ++r)
        for (int f = 1; f <= 5; ++f)
            for (int m = 1; m <= 5; ++m) {
                int covering = 0, which = -1;
                for (std::size_t i = 0; i < rules.size(); ++i)
                    if (covers(rules[i].second, r, f, m)) ++covering, which = static_cast<int>(i);
                EXPECT_EQ(covering, 1) << cell(r, f, m);
                EXPECT_EQ(lifecycle::segment_rule(grid, r, f, m), which) << cell(r, f, m);
            }
    // And the copy in this file (kDefault, used by the tests above) is that grid.
    ASSERT_EQ(kDefault.size(), rules.size());
    for (std::size_t i = 0; i < rules.size(); ++i) {
        EXPECT_EQ(rules[i].first, kDefault[i].first);
        const SegmentBox &a = rules[i].second, &b = kDefault[i].second;
        EXPECT_TRUE(a.r_low == b.r_low && a.r_high == b.r_high && a.f_low == b.f_low && a.f_high == b.f_high &&
                    a.m_low == b.m_low && a.m_high == b.m_high)
            << rules[i].first;
    }
}

// Random rule sets: the builder accepts exactly those that cover each cell once (counted
// here by brute force), maps every cell to its covering rule, and otherwise names a cell
// that is really overlapped or really unnamed.
TEST(Segments, RandomRuleSetsAgainstBruteForceCoverage) {
    std::mt19937 rng(125);
    int accepted = 0, overlaps = 0, gaps = 0;
    for (int trial = 0; trial < 5000; ++trial) {
        Rules rules;
        // Start from a random partition: split R into 1-3 bands, each band's F into 1-3 bands.
        auto cuts = [&](int pieces) {
            std::vector<int> bounds = {1};
            for (int p = 1; p < pieces; ++p) bounds.push_back(bounds.back() + 1 + static_cast<int>(rng() % 2));
            std::vector<std::pair<int, int>> out;
            for (std::size_t i = 0; i < bounds.size(); ++i)
                out.push_back({bounds[i], i + 1 < bounds.size() ? bounds[i + 1] - 1 : 5});
            return out;
        };
        for (auto rb : cuts(1 + static_cast<int>(rng() % 3)))
            for (auto fb : cuts(1 + static_cast<int>(rng() % 3)))
                rules.push_back({"rule" + std::to_string(rules.size()),
                                 SegmentBox{rb.first, rb.second, fb.first, fb.second, 1, 5}});
        // Then sometimes damage it: drop a rule, add a random box, or shrink one.
        switch (rng() % 4) {
            case 0: rules.erase(rules.begin() + static_cast<long>(rng() % rules.size())); break;
            case 1: {
                int a = 1 + static_cast<int>(rng() % 5), b = 1 + static_cast<int>(rng() % 5);
                int c = 1 + static_cast<int>(rng() % 5), d = 1 + static_cast<int>(rng() % 5);
                int e = 1 + static_cast<int>(rng() % 5), f = 1 + static_cast<int>(rng() % 5);
                rules.push_back({"extra", SegmentBox{std::min(a, b), std::max(a, b), std::min(c, d),
                                                     std::max(c, d), std::min(e, f), std::max(e, f)}});
                break;
            }
            case 2: {
                SegmentBox& b = rules[rng() % rules.size()].second;
                if (b.m_high > b.m_low) --b.m_high;
                break;
            }
            default: break;
        }
        int count[126] = {};
        for (int r = 1; r <= 5; ++r)
            for (int f = 1; f <= 5; ++f)
                for (int m = 1; m <= 5; ++m)
                    for (const auto& rule : rules) count[lifecycle::segment_cell(r, f, m)] += covers(rule.second, r, f, m);
        bool total = true, overlapping = false;
        for (int i = 0; i < 125; ++i) total = total && count[i] >= 1, overlapping = overlapping || count[i] > 1;
        SegmentGrid grid;
        const std::string message = build_rules(rules, grid);
        if (total && !overlapping) {
            ++accepted;
            ASSERT_EQ(message, "");
            for (int r = 1; r <= 5; ++r)
                for (int f = 1; f <= 5; ++f)
                    for (int m = 1; m <= 5; ++m)
                        ASSERT_TRUE(covers(rules[lifecycle::segment_rule(grid, r, f, m)].second, r, f, m));
            continue;
        }
        ASSERT_NE(message, "") << "a bad rule set was accepted";
        // The message names a cell; that cell is what the message says it is.
        const std::size_t at = message.find("R=");
        ASSERT_NE(at, std::string::npos) << message;
        const int r = message[at + 2] - '0', f = message[at + 6] - '0', m = message[at + 10] - '0';
        ASSERT_EQ(message.substr(at, 11), cell(r, f, m)) << message;
        if (overlapping) {
            ++overlaps;
            EXPECT_NE(message.find("overlap"), std::string::npos) << message;
            EXPECT_GE(count[lifecycle::segment_cell(r, f, m)], 2) << message;
        } else {
            ++gaps;
            EXPECT_NE(message.find("unnamed"), std::string::npos) << message;
            EXPECT_EQ(count[lifecycle::segment_cell(r, f, m)], 0) << message;
        }
    }
    EXPECT_GT(accepted, 100);
    EXPECT_GT(overlaps, 100);
    EXPECT_GT(gaps, 100);
}

TEST(Segments, OutOfRangeRulesAreNamed) {
    SegmentGrid grid;
    const SegmentBox bad[] = {{0, 5, 1, 5, 1, 5}, {1, 6, 1, 5, 1, 5}, {1, 5, 0, 5, 1, 5}, {1, 5, 1, 6, 1, 5},
                              {1, 5, 1, 5, 0, 5}, {1, 5, 1, 5, 1, 6}, {1, 5, 4, 3, 1, 5}, {1, 5, 1, 5, 5, 4}};
    for (const SegmentBox& box : bad) {
        Rules rules = {{"everyone", {1, 5, 1, 5, 1, 5}}, {"broken rule", box}};
        const std::string message = build_rules(rules, grid);
        EXPECT_NE(message.find("\"broken rule\""), std::string::npos) << message;
    }
    // An overlap names both rules.
    const std::string message = build_rules({{"first", {1, 5, 1, 5, 1, 5}}, {"second", {2, 2, 2, 2, 2, 2}}}, grid);
    EXPECT_NE(message.find("R=2 F=2 M=2"), std::string::npos) << message;
    EXPECT_NE(message.find("\"first\""), std::string::npos) << message;
    EXPECT_NE(message.find("\"second\""), std::string::npos) << message;
}

// A full R x F x M grid of 125 one-cell rules is fine; more rules than the grid's index
// can hold are refused.
TEST(Segments, OneRulePerCellAndTooManyRules) {
    Rules rules;
    for (int r = 1; r <= 5; ++r)
        for (int f = 1; f <= 5; ++f)
            for (int m = 1; m <= 5; ++m) rules.push_back({cell(r, f, m), SegmentBox{r, r, f, f, m, m}});
    SegmentGrid grid;
    ASSERT_EQ(build_rules(rules, grid), "");
    for (int r = 1; r <= 5; ++r)
        for (int f = 1; f <= 5; ++f)
            for (int m = 1; m <= 5; ++m) EXPECT_EQ(rules[lifecycle::segment_rule(grid, r, f, m)].first, cell(r, f, m));
    Rules many(lifecycle::kMaxSegmentRules + 1, {"x", SegmentBox{1, 5, 1, 5, 1, 5}});
    EXPECT_NE(build_rules(many, grid).find("too many"), std::string::npos);
}
