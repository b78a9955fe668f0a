-- Analyst-facing names: active rows only. Tombstoned and inactive records stay in the `*_all` tables, which also
-- keep the merge's bookkeeping (batch_id, snapshot_at, tombstoned_at).
-- One block per view. An analyst table (a Dagster asset) names the endpoints that feed it in its `-- sources:`
-- line; class_terms has none: it serves the checks, not analysts.

-- name: orgs
-- sources: orgs
CREATE OR REPLACE VIEW orgs AS SELECT * EXCLUDE (batch_id, snapshot_at, tombstoned_at) FROM orgs_all WHERE NOT is_deleted;

-- name: schools
-- sources: orgs
CREATE OR REPLACE VIEW schools AS SELECT * FROM orgs WHERE type = 'school';

-- name: academic_sessions
-- sources: academicSessions
CREATE OR REPLACE VIEW academic_sessions AS SELECT * EXCLUDE (batch_id, snapshot_at, tombstoned_at) FROM academic_sessions_all WHERE NOT is_deleted;

-- name: users
-- sources: users
CREATE OR REPLACE VIEW users AS SELECT * EXCLUDE (batch_id, snapshot_at, tombstoned_at) FROM users_all WHERE NOT is_deleted;

-- name: students
-- sources: users
CREATE OR REPLACE VIEW students AS SELECT * FROM users WHERE role = 'student';

-- name: teachers
-- sources: users
CREATE OR REPLACE VIEW teachers AS SELECT * FROM users WHERE role = 'teacher';

-- name: guardians
-- sources: users
CREATE OR REPLACE VIEW guardians AS SELECT * FROM users WHERE role IN ('parent', 'guardian', 'relative');

-- name: user_orgs
-- sources: users, orgs
CREATE OR REPLACE VIEW user_orgs AS SELECT * EXCLUDE (user_is_deleted) FROM user_orgs_all WHERE NOT user_is_deleted;

-- name: user_agents
-- sources: users
CREATE OR REPLACE VIEW user_agents AS
    SELECT * EXCLUDE (user_is_deleted) FROM user_agents_all WHERE NOT user_is_deleted;

-- name: classes
-- sources: classes
CREATE OR REPLACE VIEW classes AS SELECT * EXCLUDE (batch_id, snapshot_at, tombstoned_at) FROM classes_all WHERE NOT is_deleted;

-- name: class_terms
CREATE OR REPLACE VIEW class_terms AS
    SELECT * EXCLUDE (class_is_deleted) FROM class_terms_all WHERE NOT class_is_deleted;

-- name: courses
-- sources: courses
CREATE OR REPLACE VIEW courses AS SELECT * EXCLUDE (batch_id, snapshot_at, tombstoned_at) FROM courses_all WHERE NOT is_deleted;

-- name: enrollments
-- sources: enrollments
CREATE OR REPLACE VIEW enrollments AS SELECT * EXCLUDE (batch_id, snapshot_at, tombstoned_at) FROM enrollments_all WHERE NOT is_deleted;

-- name: demographics
-- sources: demographics
CREATE OR REPLACE VIEW demographics AS SELECT * EXCLUDE (batch_id, snapshot_at, tombstoned_at) FROM demographics_all WHERE NOT is_deleted;
