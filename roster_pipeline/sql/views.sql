-- Analyst-facing names: active rows only. Tombstoned and inactive records stay in the `*_all` tables.

-- name: views
CREATE OR REPLACE VIEW orgs AS SELECT * FROM orgs_all WHERE NOT is_deleted;
CREATE OR REPLACE VIEW schools AS SELECT * FROM orgs WHERE type = 'school';
CREATE OR REPLACE VIEW academic_sessions AS SELECT * FROM academic_sessions_all WHERE NOT is_deleted;
CREATE OR REPLACE VIEW users AS SELECT * FROM users_all WHERE NOT is_deleted;
CREATE OR REPLACE VIEW students AS SELECT * FROM users WHERE role = 'student';
CREATE OR REPLACE VIEW teachers AS SELECT * FROM users WHERE role = 'teacher';
CREATE OR REPLACE VIEW guardians AS SELECT * FROM users WHERE role IN ('parent', 'guardian', 'relative');
CREATE OR REPLACE VIEW user_orgs AS SELECT * EXCLUDE (user_is_deleted) FROM user_orgs_all WHERE NOT user_is_deleted;
CREATE OR REPLACE VIEW user_agents AS
    SELECT * EXCLUDE (user_is_deleted) FROM user_agents_all WHERE NOT user_is_deleted;
CREATE OR REPLACE VIEW classes AS SELECT * FROM classes_all WHERE NOT is_deleted;
CREATE OR REPLACE VIEW class_terms AS
    SELECT * EXCLUDE (class_is_deleted) FROM class_terms_all WHERE NOT class_is_deleted;
CREATE OR REPLACE VIEW courses AS SELECT * FROM courses_all WHERE NOT is_deleted;
CREATE OR REPLACE VIEW enrollments AS SELECT * FROM enrollments_all WHERE NOT is_deleted;
CREATE OR REPLACE VIEW demographics AS SELECT * FROM demographics_all WHERE NOT is_deleted;
