-- Contact card for one student: every guardian who may sign them out, and how to reach them.
-- Parameters: $district, $student (the student's sourcedId).
SELECT student_given_name, student_family_name, relationship, guardian_given_name, guardian_family_name,
       phone, sms, email, source
FROM student_contacts
WHERE district_id = $district AND student_sourced_id = $student
ORDER BY relationship, guardian_family_name, guardian_given_name;
