// Reads data/cdnow_customers_summary_with_transactions.csv (ID,x,t_x,T,zbar; weeks; 2,357
// customers, calibration ending 1997-09-30), the data behind the published BG/NBD and
// Gamma-Gamma figures the tests reproduce.
#pragma once

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef LIFECYCLE_DATA_DIR
#error "LIFECYCLE_DATA_DIR must name the data directory (CMakeLists.txt defines it)"
#endif

namespace cdnow {

struct Customer {
    double x;
    double t_x;
    double T;
    double zbar;
};

inline std::vector<Customer> read_summary() {
    const std::string path = std::string(LIFECYCLE_DATA_DIR) + "/cdnow_customers_summary_with_transactions.csv";
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot open " + path);
    std::string line;
    std::getline(in, line);  // header
    std::vector<Customer> customers;
    while (std::getline(in, line)) {
        if (line.empty() || line == "\r") continue;
        std::istringstream fields(line);
        std::string id, x, t_x, T, zbar;
        std::getline(fields, id, ',');
        std::getline(fields, x, ',');
        std::getline(fields, t_x, ',');
        std::getline(fields, T, ',');
        std::getline(fields, zbar, ',');
        customers.push_back({std::stod(x), std::stod(t_x), std::stod(T), std::stod(zbar)});
    }
    return customers;
}

}  // namespace cdnow
