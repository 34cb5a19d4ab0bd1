// The state of the model-fit aggregates (src/pg/model_fits.cpp): the customers' rows as
// plain numbers in the aggregate's memory. Shared so that every model's final function
// (BG/NBD, MBG/NBD, Pareto/NBD take the same rows) reads the same state, and every fit
// reuses one transition, combine, serialize and deserialize function.
#pragma once

#include "pg/postgres_headers.hpp"

namespace lifecycle::pg {

// Up to three numbers per customer (BG/NBD-type models: x, t_x, T; Gamma-Gamma: x, zbar).
struct Customer3 {
    double v[3];
};

struct FitState {
    int64 count;
    int64 capacity;
    double penalizer;  // < 0: not given yet
    Customer3* rows;
};

}  // namespace lifecycle::pg
