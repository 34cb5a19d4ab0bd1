// What the fits of the repeat-buying models (BG/NBD, MBG/NBD, Pareto/NBD) check first.
// They share the customer summary (x, t_x, T) and its rows (bgnbd::Row).
#pragma once
#include "core/no_postgres.hpp"

#include <vector>

#include "core/bgnbd.hpp"

namespace lifecycle::repeat_buying {

struct Totals {
    double weight = 0.0;         // customers
    double repeat_weight = 0.0;  // of them with a repeat purchase
    double max_T = 0.0;          // the longest observation
};

Totals totals(const std::vector<bgnbd::Row>& rows);

// Throws invalid_parameter ("<model> cannot be fitted …") when the rows cannot pin down
// four parameters: no customers, a single one, no repeat purchase (then nothing separates
// a low purchase rate from dropping out), or nothing observed (every T = 0).
void check_identifiable(const Totals& totals, const char* model);

}  // namespace lifecycle::repeat_buying
