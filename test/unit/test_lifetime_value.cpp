#include <gtest/gtest.h>

#include <cmath>

#include "core/error.hpp"
#include "core/lifetime_value.hpp"

namespace {

const lifecycle::bgnbd::Params kPurchases{0.243, 4.414, 0.793, 2.426};
const lifecycle::gamma_gamma::Params kSpend{6.25, 3.74, 15.44};
const lifecycle::bgnbd::Customer kCustomer{2, 30.43, 38.86};

}  // namespace

TEST(LifetimeValue, WithoutDiscountItIsExpectedPurchasesTimesValue) {
    const double purchases = lifecycle::bgnbd::expected_purchases(kPurchases, kCustomer, 52);
    const double value = lifecycle::gamma_gamma::expected_average_value(kSpend, {2, 22.35});
    EXPECT_NEAR(lifecycle::customer_lifetime_value(kPurchases, kSpend, kCustomer, 22.35, {52, 12, 0.0}),
                purchases * value, 1e-9);
}

TEST(LifetimeValue, OneStepIsDiscountedOnce) {
    const double purchases = lifecycle::bgnbd::expected_purchases(kPurchases, kCustomer, 52);
    const double value = lifecycle::gamma_gamma::expected_average_value(kSpend, {2, 22.35});
    EXPECT_NEAR(lifecycle::customer_lifetime_value(kPurchases, kSpend, kCustomer, 22.35, {52, 1, 0.1}),
                purchases * value / 1.1, 1e-9);
}

TEST(LifetimeValue, DiscountingLowersTheValue) {
    const double plain = lifecycle::customer_lifetime_value(kPurchases, kSpend, kCustomer, 22.35, {52, 12, 0});
    const double discounted = lifecycle::customer_lifetime_value(kPurchases, kSpend, kCustomer, 22.35, {52, 12, 0.01});
    EXPECT_LT(discounted, plain);
    EXPECT_GT(discounted, plain / std::pow(1.01, 12));
}

TEST(LifetimeValue, BadInputsAreErrors) {
    using lifecycle::customer_lifetime_value;
    // q <= 1: a customer without repeat purchases has no finite expected order value.
    EXPECT_THROW(customer_lifetime_value(kPurchases, {6.25, 0.9, 15.44}, {0, 0, 30}, 0, {52, 12, 0.01}),
                 lifecycle::Error);
    EXPECT_THROW(customer_lifetime_value(kPurchases, kSpend, kCustomer, -3, {52, 12, 0.01}), lifecycle::Error);
    EXPECT_THROW(customer_lifetime_value(kPurchases, kSpend, kCustomer, 22.35, {-52, 12, 0.01}), lifecycle::Error);
    EXPECT_THROW(customer_lifetime_value(kPurchases, kSpend, kCustomer, 22.35, {52, 0, 0.01}), lifecycle::Error);
    EXPECT_THROW(customer_lifetime_value(kPurchases, kSpend, kCustomer, 22.35, {52, 12, std::nan("")}),
                 lifecycle::Error);
    const double big = customer_lifetime_value(kPurchases, kSpend, {10000, 38, 40}, 35, {52, 12, 0.01});
    EXPECT_TRUE(std::isfinite(big) && big > 0);
}
