-- Link tables unnested from list columns, rebuilt per district from the state tables after every merge.
-- Parameters: $district.

-- name: user_orgs
DELETE FROM user_orgs_all WHERE district_id = $district;
INSERT INTO user_orgs_all
SELECT district_id, sourced_id AS user_sourced_id, unnest(org_sourced_ids) AS org_sourced_id, role,
       is_deleted AS user_is_deleted
FROM users_all
WHERE district_id = $district;

-- name: user_agents
DELETE FROM user_agents_all WHERE district_id = $district;
INSERT INTO user_agents_all
SELECT district_id, sourced_id AS user_sourced_id, unnest(agent_sourced_ids) AS agent_sourced_id, role,
       is_deleted AS user_is_deleted
FROM users_all
WHERE district_id = $district;

-- name: class_terms
DELETE FROM class_terms_all WHERE district_id = $district;
INSERT INTO class_terms_all
SELECT district_id, sourced_id AS class_sourced_id, unnest(term_sourced_ids) AS term_sourced_id,
       is_deleted AS class_is_deleted
FROM classes_all
WHERE district_id = $district;
