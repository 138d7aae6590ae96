module gostack.example/compare

go 1.19
