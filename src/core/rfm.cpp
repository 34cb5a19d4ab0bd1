#include "core/rfm.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.hpp"
#include "core/interrupt.hpp"

namespace lifecycle {

const char* measure_name(Measure measure) {
    switch (measure) {
        case Measure::recency: return "recency";
        case Measure::frequency: return "frequency";
        case Measure::monetary: return "monetary";
    }
    return "?";
}

void check_measure(Measure measure, double value) {
    if (!std::isfinite(value))
        throw_invalid(std::string("argument \"") + measure_name(measure) +
                      "\" must be a finite number");
    if (value < 0 && measure != Measure::monetary)
        throw_invalid(std::string("argument \"") + measure_name(measure) +
                      "\" must not be negative");
}

int score_from_worse_count(std::int64_t worse, std::int64_t n) {
    // worse < n, so 5 * worse / n < 5 and the score stays within 1..5.
    return 1 + static_cast<int>((kScoreLevels * worse) / n);
}

void sort_population(double* values, std::int64_t n) {
    check_interrupts();
    std::sort(values, values + n);
}

std::int64_t worse_count(const double* sorted, std::int64_t n, double value) {
    return std::lower_bound(sorted, sorted + n, value) - sorted;
}

// Score >= k  <=>  5 * worse / n >= k - 1  <=>  worse >= ceil((k - 1) * n / 5)
//             <=>  value > sorted[ceil((k - 1) * n / 5) - 1].
Breakpoints breakpoints_from_sorted(const double* sorted, std::int64_t n) {
    Breakpoints result;
    result.n = n;
    for (int k = 2; k <= kScoreLevels; ++k) {
        const std::int64_t needed = ((k - 1) * n + kScoreLevels - 1) / kScoreLevels;
        result.cut[k - 2] = sorted[needed - 1];
    }
    return result;
}

int score_against(const Breakpoints& breakpoints, double value) {
    int score = 1;
    for (double cut : breakpoints.cut)
        if (value > cut) ++score;
    return score;
}

void rfm_code(int r, int f, int m, char out[4]) {
    out[0] = static_cast<char>('0' + r);
    out[1] = static_cast<char>('0' + f);
    out[2] = static_cast<char>('0' + m);
    out[3] = '\0';
}

}  // namespace lifecycle
