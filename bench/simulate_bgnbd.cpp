// bench/simulate_bgnbd.cpp: customers drawn from a BG/NBD process with known parameters,
// for bench/models.sh. Each customer's first purchase is at time 0 and their calibration
// period T is a whole number of days, uniform in [7, 364]; while alive they buy at
// Poisson rate lambda ~ Gamma(r, scale 1/alpha) per week; after each repeat purchase they
// drop out with probability p ~ Beta(a, b). Every purchase counts (purchases are not
// merged by week); purchase times are rounded down to whole days, as a database of dates
// has them, and a purchase on the same day as the previous one is the same purchase day
// (as the summary of orders counts them). Writes "x,t_x,T" (weeks) per customer.
//   simulate_bgnbd CUSTOMERS SEED r alpha a b
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>

int main(int argc, char** argv) {
    if (argc != 7) {
        std::fprintf(stderr, "usage: simulate_bgnbd CUSTOMERS SEED r alpha a b\n");
        return 2;
    }
    const long customers = std::atol(argv[1]);
    std::mt19937_64 random(std::strtoull(argv[2], nullptr, 10));
    const double r = std::atof(argv[3]), alpha = std::atof(argv[4]);
    const double a = std::atof(argv[5]), b = std::atof(argv[6]);
    std::gamma_distribution<double> rate(r, 1.0 / alpha), beta_a(a, 1.0), beta_b(b, 1.0);
    std::uniform_int_distribution<int> days(7, 364);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    for (long i = 0; i < customers; ++i) {
        const double T = days(random) / 7.0;
        const double lambda = rate(random);
        const double ga = beta_a(random), gb = beta_b(random);
        const double p = ga / (ga + gb);
        long x = 0;
        double now = 0, last = 0;
        for (;;) {
            now += std::exponential_distribution<double>(lambda)(random);
            const double day = std::floor(now * 7.0) / 7.0;
            if (!(day <= T)) break;
            if (day == last) continue;  // the same purchase day
            ++x;
            last = day;
            if (unit(random) < p) break;  // drops out after this purchase
        }
        std::printf("%ld,%.6f,%.6f\n", x, x > 0 ? last : 0.0, T);
    }
    return 0;
}
