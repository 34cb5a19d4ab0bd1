// RFM scores (DESIGN.md, "RFM"): each measure is scored 1..5 within a population by
// score = 1 + floor(5 * (rank - 1) / N), rank being SQL rank() in ascending order of
// goodness (ties share the lowest rank). Recency is days since the last purchase
// (fewer is better); frequency and monetary are better when higher.
//
// Internally every measure is turned into a "goodness" (recency negated), so one
// ascending order serves all three; rank - 1 is then the count of strictly worse values.
#pragma once
#include "core/no_postgres.hpp"

#include <cstdint>

namespace lifecycle {

enum class Measure : std::uint8_t { recency, frequency, monetary };
constexpr int kMeasureCount = 3;
constexpr int kScoreLevels = 5;
constexpr int kCutCount = kScoreLevels - 1;

const char* measure_name(Measure measure);

// Throws invalid_parameter naming the measure for NaN/infinite values, negative
// recency (a purchase after as_of) and negative frequency.
void check_measure(Measure measure, double value);

// Higher is better for every measure after this.
inline double goodness(Measure measure, double value) {
    return measure == Measure::recency ? -value : value;
}

// The brief's formula, from the count of strictly worse members of a population of n.
int score_from_worse_count(std::int64_t worse, std::int64_t n);

// Sorts goodness values ascending in place (the population, ready for ranking).
void sort_population(double* values, std::int64_t n);

// rank - 1 of `value` (a goodness) in a sorted population: how many are strictly worse.
std::int64_t worse_count(const double* sorted, std::int64_t n, double value);

// Breakpoints capture a population so that one customer can be scored later without it:
// cut[k] is the goodness a value must strictly exceed to score at least k + 2.
// Scoring a member of the population against its breakpoints gives exactly its rank score.
struct Breakpoints {
    std::int64_t n = 0;
    double cut[kCutCount] = {0, 0, 0, 0};
};

Breakpoints breakpoints_from_sorted(const double* sorted, std::int64_t n);
int score_against(const Breakpoints& breakpoints, double value);

// Three scores as the code users read: "545" for R=5, F=4, M=5 (plain chars, no allocation).
void rfm_code(int r, int f, int m, char out[4]);

}  // namespace lifecycle
