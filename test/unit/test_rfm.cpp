#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/error.hpp"
#include "core/rfm.hpp"

using lifecycle::Measure;

namespace {

// SQL rank() in ascending order of goodness, by brute force: 1 + the number of values
// strictly worse. Independent of the sorting and searching under test.
long sql_rank(const std::vector<double>& raw, Measure measure, double value) {
    long worse = 0;
    for (double other : raw) {
        const bool is_worse = measure == Measure::recency ? other > value : other < value;
        worse += is_worse;
    }
    return 1 + worse;
}

int brief_score(long rank, long n) { return 1 + static_cast<int>(std::floor(5.0 * (rank - 1) / n)); }

std::vector<double> population(std::mt19937& rng, int n, int distinct) {
    std::uniform_int_distribution<int> pick(0, distinct - 1);
    std::vector<double> values(n);
    for (double& v : values) v = pick(rng) * 1.5;
    return values;
}

std::vector<double> sorted_goodness(const std::vector<double>& raw, Measure measure) {
    std::vector<double> g;
    for (double v : raw) g.push_back(lifecycle::goodness(measure, v));
    lifecycle::sort_population(g.data(), static_cast<std::int64_t>(g.size()));
    return g;
}

}  // namespace

TEST(Rfm, ScoreFormulaAtItsSteps) {
    // N = 7: ranks 1..7 give 1,1,2,3,3,4,5.
    const int expected[] = {1, 1, 2, 3, 3, 4, 5};
    for (int rank = 1; rank <= 7; ++rank)
        EXPECT_EQ(lifecycle::score_from_worse_count(rank - 1, 7), expected[rank - 1]) << rank;
    EXPECT_EQ(lifecycle::score_from_worse_count(0, 1), 1);
    EXPECT_EQ(lifecycle::score_from_worse_count(999999999, 1000000000), 5);
}

TEST(Rfm, WindowScoresEqualBruteForceRanks) {
    std::mt19937 rng(12345);
    for (int trial = 0; trial < 200; ++trial) {
        const int n = 1 + static_cast<int>(rng() % 60);
        const int distinct = 1 + static_cast<int>(rng() % 12);  // many ties
        for (int d = 0; d < lifecycle::kMeasureCount; ++d) {
            const Measure measure = static_cast<Measure>(d);
            const std::vector<double> raw = population(rng, n, distinct);
            const std::vector<double> sorted = sorted_goodness(raw, measure);
            for (double v : raw) {
                const long worse = lifecycle::worse_count(sorted.data(), n, lifecycle::goodness(measure, v));
                EXPECT_EQ(worse + 1, sql_rank(raw, measure, v));
                EXPECT_EQ(lifecycle::score_from_worse_count(worse, n), brief_score(sql_rank(raw, measure, v), n));
            }
        }
    }
}

TEST(Rfm, BreakpointsReproduceMembersScores) {
    std::mt19937 rng(777);
    for (int trial = 0; trial < 200; ++trial) {
        const int n = 1 + static_cast<int>(rng() % 80);
        const int distinct = 1 + static_cast<int>(rng() % 20);
        for (int d = 0; d < lifecycle::kMeasureCount; ++d) {
            const Measure measure = static_cast<Measure>(d);
            const std::vector<double> raw = population(rng, n, distinct);
            const std::vector<double> sorted = sorted_goodness(raw, measure);
            const lifecycle::Breakpoints bp = lifecycle::breakpoints_from_sorted(sorted.data(), n);
            EXPECT_EQ(bp.n, n);
            for (double v : raw)
                EXPECT_EQ(lifecycle::score_against(bp, lifecycle::goodness(measure, v)),
                          brief_score(sql_rank(raw, measure, v), n))
                    << "n=" << n << " value=" << v;
        }
    }
}

// A value outside the population scores as if it had joined it without moving the
// others: higher than all is 5, lower than all is 1.
TEST(Rfm, BreakpointsForNewcomers) {
    const std::vector<double> raw = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    const std::vector<double> sorted = sorted_goodness(raw, Measure::frequency);
    const lifecycle::Breakpoints bp = lifecycle::breakpoints_from_sorted(sorted.data(), 10);
    EXPECT_EQ(lifecycle::score_against(bp, 100), 5);
    EXPECT_EQ(lifecycle::score_against(bp, 0), 1);
    EXPECT_EQ(lifecycle::score_against(bp, 4.5), 3);  // 4 worse of 10: 1 + floor(20/10)
}

TEST(Rfm, RecencyFewerDaysIsBetter) {
    const std::vector<double> raw = {5, 50, 500};
    const std::vector<double> sorted = sorted_goodness(raw, Measure::recency);
    EXPECT_EQ(lifecycle::worse_count(sorted.data(), 3, lifecycle::goodness(Measure::recency, 5)), 2);
    EXPECT_EQ(lifecycle::worse_count(sorted.data(), 3, lifecycle::goodness(Measure::recency, 500)), 0);
}

TEST(Rfm, BadMeasuresAreNamed) {
    struct Case {
        Measure measure;
        double value;
        const char* name;
    } cases[] = {
        {Measure::monetary, std::nan(""), "monetary"},
        {Measure::monetary, HUGE_VAL, "monetary"},
        {Measure::recency, -1, "recency"},
        {Measure::frequency, -1, "frequency"},
        {Measure::recency, -HUGE_VAL, "recency"},
    };
    for (const Case& c : cases) {
        try {
            lifecycle::check_measure(c.measure, c.value);
            ADD_FAILURE() << "no error for " << c.name;
        } catch (const lifecycle::Error& e) {
            EXPECT_EQ(e.kind(), lifecycle::ErrorKind::invalid_parameter);
            EXPECT_NE(std::string(e.what()).find(c.name), std::string::npos);
        }
    }
    EXPECT_NO_THROW(lifecycle::check_measure(Measure::monetary, -20));  // refunds
}

TEST(Rfm, Code) {
    char code[4];
    lifecycle::rfm_code(5, 4, 1, code);
    EXPECT_STREQ(code, "541");
}

namespace {

// The brief's formula in exact integer arithmetic (rank - 1 >= 0, so / is floor).
int exact_score(long rank, long n) { return 1 + static_cast<int>((5 * (rank - 1)) / n); }

}  // namespace

// Real-valued populations: fractional and negative monetary values (refunds), recency in
// days, frequencies; each member's score from worse_count and from the breakpoints equals
// the score of its brute-force SQL rank().
TEST(Rfm, RealValuedPopulationsWithNegativesAndTies) {
    std::mt19937 rng(4242);
    std::uniform_real_distribution<double> money(-50.0, 500.0);
    for (int trial = 0; trial < 300; ++trial) {
        const int n = 1 + static_cast<int>(rng() % 120);
        for (int d = 0; d < lifecycle::kMeasureCount; ++d) {
            const Measure measure = static_cast<Measure>(d);
            std::vector<double> raw(n);
            for (double& v : raw) {
                if (measure == Measure::monetary)
                    v = (rng() % 3 == 0) ? 19.99 : money(rng);  // a popular price makes ties
                else
                    v = static_cast<double>(rng() % 40);
                lifecycle::check_measure(measure, v);
            }
            const std::vector<double> sorted = sorted_goodness(raw, measure);
            ASSERT_TRUE(std::is_sorted(sorted.begin(), sorted.end()));
            const lifecycle::Breakpoints bp = lifecycle::breakpoints_from_sorted(sorted.data(), n);
            for (double v : raw) {
                const long rank = sql_rank(raw, measure, v);
                const int expected = exact_score(rank, n);
                ASSERT_GE(expected, 1);
                ASSERT_LE(expected, 5);
                EXPECT_EQ(lifecycle::worse_count(sorted.data(), n, lifecycle::goodness(measure, v)), rank - 1);
                EXPECT_EQ(lifecycle::score_from_worse_count(rank - 1, n), expected);
                EXPECT_EQ(lifecycle::score_against(bp, lifecycle::goodness(measure, v)), expected)
                    << lifecycle::measure_name(measure) << " n=" << n << " value=" << v;
            }
        }
    }
}

// The formula over every (rank, N) up to 300, against integer arithmetic, including the
// points where a score steps up.
TEST(Rfm, ScoreFromWorseCountForEveryRank) {
    for (long n = 1; n <= 300; ++n)
        for (long rank = 1; rank <= n; ++rank)
            ASSERT_EQ(lifecycle::score_from_worse_count(rank - 1, n), exact_score(rank, n)) << rank << "/" << n;
    // N = 10: two members per score.
    const int ten[] = {1, 1, 2, 2, 3, 3, 4, 4, 5, 5};
    for (int rank = 1; rank <= 10; ++rank) EXPECT_EQ(lifecycle::score_from_worse_count(rank - 1, 10), ten[rank - 1]);
}

// A whole population tied: rank 1 for everyone, score 1 for everyone.
TEST(Rfm, AllTiedScoreOne) {
    for (int n : {1, 2, 5, 99}) {
        const std::vector<double> raw(n, 3.0);
        for (int d = 0; d < lifecycle::kMeasureCount; ++d) {
            const Measure measure = static_cast<Measure>(d);
            const std::vector<double> sorted = sorted_goodness(raw, measure);
            const lifecycle::Breakpoints bp = lifecycle::breakpoints_from_sorted(sorted.data(), n);
            EXPECT_EQ(lifecycle::score_against(bp, lifecycle::goodness(measure, 3.0)), 1);
            EXPECT_EQ(lifecycle::score_from_worse_count(
                          lifecycle::worse_count(sorted.data(), n, lifecycle::goodness(measure, 3.0)), n),
                      1);
        }
    }
}

// A value outside the population (scored against breakpoints) scores by how many members
// are strictly worse, as the formula would with it ranked among them, capped at 5.
TEST(Rfm, NewcomersScoreByMembersStrictlyWorse) {
    std::mt19937 rng(55);
    for (int trial = 0; trial < 2000; ++trial) {
        const int n = 1 + static_cast<int>(rng() % 50);
        std::vector<double> raw(n);
        for (double& v : raw) v = static_cast<double>(rng() % 30);
        const Measure measure = static_cast<Measure>(rng() % lifecycle::kMeasureCount);
        const std::vector<double> sorted = sorted_goodness(raw, measure);
        const lifecycle::Breakpoints bp = lifecycle::breakpoints_from_sorted(sorted.data(), n);
        const double newcomer = static_cast<double>(rng() % 34) - 2 + ((rng() % 2) ? 0.5 : 0.0);
        long worse = 0;
        for (double v : raw) worse += measure == Measure::recency ? v > newcomer : v < newcomer;
        const int expected = std::min(5, 1 + static_cast<int>((5 * worse) / n));
        EXPECT_EQ(lifecycle::score_against(bp, lifecycle::goodness(measure, newcomer)), expected)
            << "n=" << n << " newcomer=" << newcomer;
    }
}

TEST(Rfm, MeasureNamesAndGoodness) {
    EXPECT_STREQ(lifecycle::measure_name(Measure::recency), "recency");
    EXPECT_STREQ(lifecycle::measure_name(Measure::frequency), "frequency");
    EXPECT_STREQ(lifecycle::measure_name(Measure::monetary), "monetary");
    EXPECT_GT(lifecycle::goodness(Measure::recency, 1), lifecycle::goodness(Measure::recency, 2));
    EXPECT_GT(lifecycle::goodness(Measure::frequency, 2), lifecycle::goodness(Measure::frequency, 1));
    EXPECT_GT(lifecycle::goodness(Measure::monetary, 2), lifecycle::goodness(Measure::monetary, -1));
    EXPECT_NO_THROW(lifecycle::check_measure(Measure::recency, 0));
    EXPECT_NO_THROW(lifecycle::check_measure(Measure::frequency, 0));
    EXPECT_THROW(lifecycle::check_measure(Measure::frequency, std::nan("")), lifecycle::Error);
    EXPECT_THROW(lifecycle::check_measure(Measure::monetary, -HUGE_VAL), lifecycle::Error);
}
