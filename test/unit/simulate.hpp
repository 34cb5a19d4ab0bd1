// Customers simulated from the purchase models' own stories, for the unit tests that check
// a fit against the parameters it was simulated from (test_bgnbd.cpp, test_mbgnbd.cpp,
// test_ground_truth.cpp). Times are continuous; every customer's first purchase is at 0
// and their calibration period T is uniform in [T_min, T_max] (customers arriving
// uniformly over the first T_max − T_min time units, or in cohorts: see T_step). Besides
// the model's summary (x, t_x, T) a simulated customer knows what data cannot show:
// whether they were still alive at T, and whether they bought in a holdout period
// (T, T + holdout]. The existing recovery tests in test_bgnbd.cpp and test_mbgnbd.cpp
// draw exactly the customers they drew with their own loops before (same fits, to the bit).
//
// The random draws, in order, per customer: λ ~ Gamma(r, scale 1/α); the dropout (BG/NBD,
// MBG/NBD: two Gammas making p ~ Beta(a, b); Pareto/NBD: μ ~ Gamma(s, scale 1/β) and the
// lifetime ~ Exp(μ)); T; (MBG/NBD: the dropout after the first purchase); then the gaps
// between purchases, and after each BG/NBD or MBG/NBD purchase the dropout. The holdout
// needs no further draws: the gap that carried the process past T tells whether the next
// purchase falls in the holdout (the Poisson process is memoryless).
#pragma once

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/bgnbd.hpp"

namespace simulate {

enum class Model { kBgnbd, kMbgnbd, kParetoNbd };

// (r, α, a, b) for BG/NBD and MBG/NBD, (r, α, s, β) for Pareto/NBD.
struct Truth {
    double r, alpha, third, fourth;
};

struct Customer {
    lifecycle::bgnbd::Customer summary;  // x, t_x, T
    bool alive_at_T;
    bool bought_in_holdout;
};

struct Population {
    Model model;
    Truth truth;
    double T_min, T_max, holdout;
    // > 0: customers arrive in cohorts, T is T_min + a whole number of steps (uniform over
    // the cohorts up to T_max). The model takes T as given, so this changes nothing in it,
    // but the one-time buyers of a cohort share (0, 0, T) and merge into one row.
    double T_step = 0;
};

inline std::vector<Customer> customers(const Population& pop, int n, std::mt19937_64& rng) {
    const Truth& p = pop.truth;
    std::gamma_distribution<double> rate(p.r, 1.0 / p.alpha);
    std::gamma_distribution<double> g3(p.third, pop.model == Model::kParetoNbd ? 1.0 / p.fourth : 1.0);
    std::gamma_distribution<double> g4(p.fourth, 1.0);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    std::vector<Customer> out;
    out.reserve(n);
    for (int i = 0; i < n; ++i) {
        const double lambda = rate(rng);
        double drop = 0, lifetime = 0;  // p, or the Pareto/NBD lifetime
        if (pop.model == Model::kParetoNbd) {
            lifetime = std::exponential_distribution<double>(g3(rng))(rng);
        } else {
            const double u = g3(rng);
            drop = u / (u + g4(rng));
        }
        double T = pop.T_min + (pop.T_max - pop.T_min) * unit(rng);
        if (pop.T_step > 0) {
            const double cohorts = std::floor((pop.T_max - pop.T_min) / pop.T_step) + 1;
            T = pop.T_min + pop.T_step * std::min(std::floor((T - pop.T_min) / (pop.T_max - pop.T_min) * cohorts),
                                                  cohorts - 1);
        }
        // When the customer drops out (Pareto/NBD); the others drop out only at a purchase.
        const double end = pop.model == Model::kParetoNbd ? lifetime : 1e300;
        std::exponential_distribution<double> gap(lambda);
        double t = 0, t_x = 0, x = 0;
        bool alive = pop.model == Model::kMbgnbd ? unit(rng) >= drop : true;
        bool holdout = false;
        while (alive) {
            t += gap(rng);
            if (t > end) {
                alive = false;  // dropped out (Pareto/NBD) before this purchase
                break;
            }
            if (t > T) {
                holdout = t <= T + pop.holdout;
                break;
            }
            x += 1;
            t_x = t;
            if (pop.model != Model::kParetoNbd) alive = unit(rng) >= drop;
        }
        // Pareto/NBD: alive at T means the lifetime outlasts T, whatever the purchases did.
        if (pop.model == Model::kParetoNbd) {
            alive = lifetime > T;
            holdout = holdout && t <= end;
        }
        out.push_back({{x, t_x, T}, alive, holdout});
    }
    return out;
}

inline std::vector<lifecycle::bgnbd::Row> rows(const std::vector<Customer>& customers) {
    std::vector<lifecycle::bgnbd::Row> out;
    out.reserve(customers.size());
    for (const Customer& c : customers) out.push_back({c.summary, 1.0});
    return out;
}

}  // namespace simulate
