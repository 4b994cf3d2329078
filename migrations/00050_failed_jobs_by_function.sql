-- Dead letters by function (status, the console's overview and filters):
-- an index the count reads alone, instead of every row it counts.

-- +goose Up
ALTER TABLE rowgear_failed_jobs ADD KEY rowgear_failed_jobs_function (state, function);

-- +goose Down
ALTER TABLE rowgear_failed_jobs DROP KEY rowgear_failed_jobs_function;
