"""Deterministic synthetic OneRoster 1.1 districts.

A district is seven collections of plain dicts in OneRoster 1.1 JSON shape, keyed by sourcedId. Everything
is drawn from one `random.Random` seeded from the spec, so the same spec always yields the same records.
Sub-objects that many records point at (a school's GUIDRef, a grade list) are built once and shared, which
keeps a million-user district to a few GB; the store is copy-on-write, so sharing is safe.
"""

from __future__ import annotations

import bisect
import gc
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from roster_pipeline.sandbox.clock import LogicalClock, format_instant

COLLECTIONS = ("academicSessions", "orgs", "users", "classes", "enrollments", "courses", "demographics")
GUID_TYPES = {
    "academicSessions": "academicSession",
    "orgs": "org",
    "users": "user",
    "classes": "class",
    "enrollments": "enrollment",
    "courses": "course",
    "demographics": "demographics",
}
GRADES = ("KG", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12")
GUARDIAN_ROLES = ("parent", "guardian", "relative")

_BANDS = (("Elementary", GRADES[0:6]), ("Middle", GRADES[6:9]), ("High", GRADES[9:13]))
_SUBJECTS = (
    ("Mathematics", "MATH"),
    ("English Language Arts", "ELA"),
    ("Science", "SCI"),
    ("Social Studies", "SS"),
    ("Art", "ART"),
    ("Music", "MUS"),
    ("Physical Education", "PE"),
    ("World Languages", "WL"),
)
# fmt: off
_PLACES = (
    "Oak Ridge", "Maple Grove", "Cedar Falls", "Willow Creek", "Pine Hill", "Riverside", "Lakeview",
    "Sunnyvale", "Fairview", "Hillcrest", "Brookside", "Meadowbrook", "Northgate", "Southpoint", "Eastwood",
    "Westfield",
)
_GIVEN = (
    "Ava", "Liam", "Olivia", "Noah", "Emma", "Mateo", "Sophia", "Elijah", "Isabella", "Lucas", "Mia",
    "Levi", "Amelia", "Ezra", "Harper", "Asher", "Aria", "Leo", "Chloe", "Kai", "Zoe", "Omar", "Nora",
    "Ravi", "Mei", "Diego", "Aisha", "Hiro", "Fatima", "Jonah", "Priya", "Sven", "Lucia", "Tariq", "Ingrid",
    "Kofi", "Yara", "Jamal", "Elena", "Tomas", "Grace", "Arjun", "Hana", "Felix", "Rosa", "Malik", "Ines",
    "Owen", "Sara", "Ali",
)
_FAMILY = (
    "Smith", "Johnson", "Garcia", "Nguyen", "Kim", "Patel", "Brown", "Martinez", "Lee", "Wilson",
    "Anderson", "Lopez", "O'Brien", "Hernandez", "Chen", "Okafor", "Silva", "Cohen", "Novak", "Haddad",
    "Rossi", "Tanaka", "Kowalski", "Mensah", "Larsen", "Dubois", "Schmidt", "Ivanova", "Costa", "Reyes",
    "Ali", "Khan", "Murphy", "Walker", "Young", "Scott", "Adams", "Baker", "Rivera", "Campbell", "Mitchell",
    "Carter", "Roberts", "Diaz", "Turner", "Phillips", "Evans", "Torres", "Parker", "Flores",
)
# fmt: on
_RACES = (
    "americanIndianOrAlaskaNative",
    "asian",
    "blackOrAfricanAmerican",
    "nativeHawaiianOrOtherPacificIslander",
    "white",
    "demographicRaceTwoOrMoreRaces",
)
# One race flag set per student: each dict has exactly one "true".
_RACE_FLAGS = tuple({name: "true" if i == race else "false" for i, name in enumerate(_RACES)} for race in range(6))
_CITIES = ("Springfield", "Riverton", "Fairfax", "Greenville", "Madison", "Georgetown", "Salem", "Franklin")
# One-sided agent links: a few links are declared only by the guardian or only by the student, as real SIS
# exports do; the first two links are forced one-sided so even a tiny district exercises both cases.
_ONE_SIDED_RATE = 0.02
_THIRD_GUARDIAN_RATE = 0.03


@dataclass(frozen=True)
class DistrictSpec:
    """The shape of a synthetic district; every field but `district_id` has a small default."""

    district_id: str
    seed: int = 0
    schools: int = 2
    students_per_school: int = 40
    classes_per_school: int = 6
    guardians_per_student: tuple[int, int] = (1, 2)
    teachers_per_school: int = 4
    classes_per_student: int = 4
    base_time: str = "2024-09-01T00:00:00Z"

    @classmethod
    def for_users(cls, district_id: str, n: int, seed: int = 0) -> DistrictSpec:
        """A spec whose district has about `n` users (within a few percent for n >= 1000).

        Users are roughly 46% students, 2% teachers and 52% guardians, with ~1000 students per school
        and classes of about 25, as in a mid-sized US district.
        """
        students = max(1, round(n / _USERS_PER_STUDENT))
        schools = max(1, round(students / 1000))
        per_school = max(1, round(students / schools))
        return cls(
            district_id=district_id,
            seed=seed,
            schools=schools,
            students_per_school=per_school,
            classes_per_school=max(2, per_school * 4 // 25),
            teachers_per_school=max(1, per_school // 20),
        )


# Expected users per student under the family model below (guardians per student ~1.13, teachers 1/20).
_USERS_PER_STUDENT = 2.18


class SyntheticDistrict:
    """A district's current records, mutable the way a SIS changes between syncs. Thread-safe.

    Records handed out are shared, not copied: treat them as read-only and change data through `upsert`,
    `mark_tobedeleted` and `remove`, which replace records rather than mutate them.
    """

    def __init__(self, spec: DistrictSpec, collections: dict[str, dict[str, dict]]) -> None:
        self.spec = spec
        self.district_id = spec.district_id
        self.clock = LogicalClock(not_before=datetime.fromisoformat(spec.base_time))
        self._lock = threading.RLock()
        self._records = collections
        self._keys = {name: sorted(records) for name, records in collections.items()}
        self._versions = dict.fromkeys(collections, 0)

    def records(self, collection: str) -> list[dict]:
        """All current records of a collection (active and tobedeleted), ordered by sourcedId."""
        with self._lock:
            records = self._collection(collection)
            return [records[key] for key in self._keys[collection]]

    def get(self, collection: str, sourced_id: str) -> dict:
        """One record by sourcedId; KeyError if the collection has no such record."""
        with self._lock:
            return self._collection(collection)[sourced_id]

    def upsert(self, collection: str, record: dict) -> dict:
        """Add or replace a record, stamping `dateLastModified` from the district clock. Returns it."""
        stored = {"status": "active", **record, "dateLastModified": self.clock.tick()}
        sourced_id = stored["sourcedId"]
        with self._lock:
            records = self._collection(collection)
            if sourced_id not in records:
                bisect.insort(self._keys[collection], sourced_id)
            records[sourced_id] = stored
            self._versions[collection] += 1
        return stored

    def mark_tobedeleted(self, collection: str, sourced_id: str) -> dict:
        """Tombstone a record the OneRoster way: status 'tobedeleted' and a fresh `dateLastModified`."""
        with self._lock:
            return self.upsert(collection, {**self.get(collection, sourced_id), "status": "tobedeleted"})

    def remove(self, collection: str, sourced_id: str) -> None:
        """Hard-delete a record: it vanishes from the collection (only a full sync can notice)."""
        with self._lock:
            del self._collection(collection)[sourced_id]
            keys = self._keys[collection]
            del keys[bisect.bisect_left(keys, sourced_id)]
            self._versions[collection] += 1

    def counts(self) -> dict[str, int]:
        """Active records per collection."""
        with self._lock:
            return {
                name: sum(1 for r in records.values() if r["status"] == "active")
                for name, records in self._records.items()
            }

    def version(self, collection: str) -> int:
        """A number that changes whenever the collection changes (lets the server cache filter results)."""
        with self._lock:
            self._collection(collection)
            return self._versions[collection]

    def size(self, collection: str) -> int:
        """How many records (any status) the collection holds."""
        with self._lock:
            return len(self._collection(collection))

    def page(self, collection: str, start: int, stop: int) -> list[dict]:
        """Records at positions [start, stop) in sourcedId order."""
        with self._lock:
            records = self._collection(collection)
            return [records[key] for key in self._keys[collection][start:stop]]

    def select(self, collection: str, predicate: Callable[[dict], bool]) -> list[dict]:
        """Records matching `predicate`, in sourcedId order."""
        with self._lock:
            records = self._collection(collection)
            return [r for r in (records[key] for key in self._keys[collection]) if predicate(r)]

    def _collection(self, collection: str) -> dict[str, dict]:
        try:
            return self._records[collection]
        except KeyError:
            raise KeyError(f"unknown OneRoster collection {collection!r}; expected one of {COLLECTIONS}") from None


def generate_district(spec: DistrictSpec) -> SyntheticDistrict:
    """Build the district described by `spec`; the same spec always gives the same records."""
    # Millions of new dicts would trigger the cyclic garbage collector over and over, although none of
    # them can be garbage yet; pausing it roughly halves the build time of a large district.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return SyntheticDistrict(spec, _DistrictBuilder(spec).build())
    finally:
        if was_enabled:
            gc.enable()


class _DistrictBuilder:
    """Draws one district's records; each `_add_*` step appends to `self.collections`."""

    def __init__(self, spec: DistrictSpec) -> None:
        if spec.schools < 1 or spec.students_per_school < 1 or spec.teachers_per_school < 1:
            raise ValueError("a district needs at least one school, student and teacher per school")
        lo, hi = spec.guardians_per_student
        if not 0 <= lo <= hi:
            raise ValueError(f"guardians_per_student must be (low, high) with 0 <= low <= high, got {lo, hi}")
        self.spec = spec
        # A string seed is hashed with SHA-512 by `random`, so it is stable across processes, and two
        # districts built with the same seed still get distinct sourcedIds.
        self.rng = random.Random(f"{spec.district_id}:{spec.seed}")
        self.api = f"/{spec.district_id}/ims/oneroster/v1p1"
        self.collections: dict[str, dict[str, dict]] = {name: {} for name in COLLECTIONS}
        base = datetime.fromisoformat(spec.base_time)
        self.school_year = base.year + 1 if base.month >= 7 else base.year
        # Base records were last modified during the month before base_time; a shared pool of timestamps
        # keeps generation fast and memory small.
        self.stamps = [
            format_instant(base - timedelta(milliseconds=self.rng.randrange(30 * 86_400_000))) for _ in range(4096)
        ]

    def build(self) -> dict[str, dict[str, dict]]:
        self._add_sessions()
        self._add_orgs()
        self.admin = self._add_user("administrator", self.district_orgs, "Dana", "Okafor", grades=[])
        for school in range(self.spec.schools):
            self._add_school_roster(school)
        self._add_guardians()
        return self.collections

    # -- helpers -------------------------------------------------------------------------------------

    def _id(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}"

    def _ref(self, collection: str, sourced_id: str) -> dict:
        return {
            "href": f"{self.api}/{collection}/{sourced_id}",
            "sourcedId": sourced_id,
            "type": GUID_TYPES[collection],
        }

    def _base(self, collection: str) -> tuple[str, dict]:
        sourced_id = self._id()
        record = {
            "sourcedId": sourced_id,
            "status": "active",
            "dateLastModified": self.stamps[self.rng.getrandbits(12)],
        }
        self.collections[collection][sourced_id] = record
        return sourced_id, record

    # -- collections ---------------------------------------------------------------------------------

    def _add_sessions(self) -> None:
        year = self.school_year
        year_id, school_year = self._base("academicSessions")
        self.year_ref = self._ref("academicSessions", year_id)
        terms = []
        for title, start, end in (
            ("Fall", f"{year - 1}-08-20", f"{year - 1}-12-20"),
            ("Spring", f"{year}-01-06", f"{year}-06-13"),
        ):
            term_id, term = self._base("academicSessions")
            term.update(
                title=f"{title} {start[:4]}",
                type="term",
                startDate=start,
                endDate=end,
                parent=self.year_ref,
                children=[],
                schoolYear=str(year),
            )
            terms.append(self._ref("academicSessions", term_id))
        school_year.update(
            title=f"{year - 1}-{year}",
            type="schoolYear",
            startDate=f"{year - 1}-08-20",
            endDate=f"{year}-06-13",
            parent=None,
            children=terms,
            schoolYear=str(year),
        )
        self.term_refs = terms
        self.term_dates = (f"{year - 1}-08-20", f"{year}-06-13")

    def _add_orgs(self) -> None:
        spec = self.spec
        district_id, district = self._base("orgs")
        district_ref = self._ref("orgs", district_id)
        self.district_orgs = [district_ref]
        self.school_refs: list[dict] = []
        self.school_bands: list[tuple[str, ...]] = []
        for index in range(spec.schools):
            school_id, school = self._base("orgs")
            band, grades = _BANDS[index % len(_BANDS)]
            place = _PLACES[index % len(_PLACES)] + (f" {index // len(_PLACES) + 1}" if index >= len(_PLACES) else "")
            school.update(
                name=f"{place} {band} School",
                type="school",
                identifier=f"{self.rng.randrange(10**11, 10**12)}",
                parent=district_ref,
                children=[],
            )
            self.school_refs.append(self._ref("orgs", school_id))
            self.school_bands.append(grades)
        district.update(
            name=f"{spec.district_id.replace('-', ' ').title()} Unified School District",
            type="district",
            identifier=spec.district_id.upper(),
            parent=None,
            children=list(self.school_refs),
        )
        self.grade_lists = {grade: [grade] for grade in GRADES}
        self.school_org_lists = [[ref] for ref in self.school_refs]
        self.students: list[tuple[dict, dict, int]] = []  # (record, GUIDRef, school index)

    def _add_user(self, role: str, orgs: list[dict], given: str, family: str, grades: list[str], **extra: str) -> dict:
        _, user = self._base("users")
        number = len(self.collections["users"])
        username = f"{given}.{family}{number}".lower().replace("'", "")
        user.update(
            username=username,
            userIds=[{"type": "LDAP", "identifier": username}],
            enabledUser="true",
            givenName=given,
            familyName=family,
            middleName="",
            role=role,
            identifier=f"{number:07d}",
            email=f"{username}@{self.spec.district_id}.example.org",
            sms="",
            phone="",
            agents=[],
            orgs=orgs,
            grades=grades,
        )
        user.update(extra)
        return user

    def _add_school_roster(self, school: int) -> None:
        spec, rng = self.spec, self.rng
        school_ref, grades = self.school_refs[school], self.school_bands[school]
        orgs = self.school_org_lists[school]
        courses = []
        for index in range(max(1, spec.classes_per_school // 2)):
            subject, code = _SUBJECTS[index % len(_SUBJECTS)]
            grade = grades[index // len(_SUBJECTS) % len(grades)]
            course_id, course = self._base("courses")
            course.update(
                title=f"{subject} {grade}",
                schoolYear=self.year_ref,
                courseCode=f"{code}-{grade}-{school:03d}-{index}",
                grades=self.grade_lists[grade],
                subjects=[subject],
                org=school_ref,
            )
            courses.append((self._ref("courses", course_id), course))
        teachers = []
        for _ in range(spec.teachers_per_school):
            teacher = self._add_user("teacher", orgs, rng.choice(_GIVEN), rng.choice(_FAMILY), grades=[])
            teachers.append(self._ref("users", teacher["sourcedId"]))
        classes = []
        for index in range(spec.classes_per_school):
            course_ref, course = courses[index % len(courses)]
            homeroom = index % 6 == 5
            class_id, klass = self._base("classes")
            klass.update(
                title=("Homeroom " if homeroom else "") + f"{course['title']} - {index}",
                classCode=f"{course['courseCode']}-{index:03d}",
                classType="homeroom" if homeroom else "scheduled",
                location=f"Room {100 + index % 300}",
                grades=course["grades"],
                subjects=course["subjects"],
                course=course_ref,
                school=school_ref,
                terms=self.term_refs if index % 3 else self.term_refs[index % 2 : index % 2 + 1],
                periods=[str(index % 8 + 1)],
            )
            class_ref = self._ref("classes", class_id)
            classes.append(class_ref)
            self._enroll(teachers[index % len(teachers)], class_ref, school_ref, "teacher", "true")
            if index % 10 == 9 and len(teachers) > 1:
                self._enroll(teachers[(index + 1) % len(teachers)], class_ref, school_ref, "teacher", "false")
        per_student = min(spec.classes_per_student, len(classes))
        for _ in range(spec.students_per_school):
            grade = rng.choice(grades)
            student = self._add_user(
                "student", orgs, rng.choice(_GIVEN), rng.choice(_FAMILY), grades=self.grade_lists[grade]
            )
            student["middleName"] = rng.choice(_GIVEN) if rng.random() < 0.5 else ""
            student_ref = self._ref("users", student["sourcedId"])
            self.students.append((student, student_ref, school))
            self._add_demographics(student, grade)
            for index in _distinct_indices(rng, len(classes), per_student):
                self._enroll(student_ref, classes[index], school_ref, "student", "false")

    def _enroll(self, user_ref: dict, class_ref: dict, school_ref: dict, role: str, primary: str) -> None:
        _, enrollment = self._base("enrollments")
        begin, end = self.term_dates
        enrollment.update(
            user=user_ref,
            **{"class": class_ref},
            school=school_ref,
            role=role,
            primary=primary,
            beginDate=begin,
            endDate=end,
        )

    def _add_demographics(self, student: dict, grade: str) -> None:
        rng = self.rng
        age = 5 + GRADES.index(grade)
        record = {
            "sourcedId": student["sourcedId"],
            "status": "active",
            "dateLastModified": student["dateLastModified"],
        }
        record.update(
            _RACE_FLAGS[rng.randrange(len(_RACE_FLAGS))],
            birthDate=f"{self.school_year - 1 - age}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            sex="male" if rng.random() < 0.5 else "female",
            hispanicOrLatinoEthnicity="true" if rng.random() < 0.25 else "false",
            countryOfBirthCode="US",
            stateOfBirthAbbreviation="CA",
            cityOfBirth=rng.choice(_CITIES),
            publicSchoolResidenceStatus="01652",
        )
        self.collections["demographics"][student["sourcedId"]] = record

    def _families(self) -> Iterator[tuple[list[tuple[dict, dict, int]], int]]:
        """Group students into families of 1-3 children, each with its number of guardians.

        Students are shuffled across schools, so siblings often attend different schools. The first family
        is forced to span two schools and the second to have three guardians, so small districts still
        contain both cases.
        """
        spec, rng = self.spec, self.rng
        order = list(range(len(self.students)))
        rng.shuffle(order)
        if spec.schools >= 2:
            first_pair = [0, spec.students_per_school]
            order = first_pair + [i for i in order if i not in (0, spec.students_per_school)]
        lo, hi = spec.guardians_per_student
        position, family_number = 0, 0
        while position < len(order):
            size = (
                2 if family_number == 0 and spec.schools >= 2 else rng.choices((1, 2, 3), cum_weights=(70, 95, 100))[0]
            )
            children = [self.students[i] for i in order[position : position + size]]
            guardians = rng.randint(lo, hi)
            if (family_number == 1 or rng.random() < _THIRD_GUARDIAN_RATE) and hi > 0:
                guardians = max(guardians, 3)
            yield children, guardians
            position += size
            family_number += 1

    def _add_guardians(self) -> None:
        rng = self.rng
        links = 0
        for children, count in self._families():
            family = children[0][0]["familyName"]
            schools = sorted({school for _, _, school in children})
            orgs = [self.school_refs[s] for s in schools]
            for position in range(count):
                role = "parent" if position < 2 and rng.random() < 0.85 else rng.choice(GUARDIAN_ROLES)
                given = rng.choice(_GIVEN)
                surname = family if role == "parent" or rng.random() < 0.5 else rng.choice(_FAMILY)
                phone = f"+1-555-{rng.randrange(200, 1000)}-{rng.randrange(10000):04d}"
                guardian = self._add_user(
                    role,
                    orgs,
                    given,
                    surname,
                    grades=[],
                    phone=phone,
                    sms=phone if rng.random() < 0.6 else "",
                    enabledUser="false" if rng.random() < 0.05 else "true",
                )
                guardian["email"] = f"{guardian['username']}@mail.example.com"
                guardian_ref = self._ref("users", guardian["sourcedId"])
                for student, student_ref, _ in children:
                    side = "both" if links > 1 else ("guardian", "student")[links]
                    if side == "both" and rng.random() < 2 * _ONE_SIDED_RATE:
                        side = rng.choice(("guardian", "student"))
                    if side != "student":
                        guardian["agents"].append(student_ref)
                    if side != "guardian":
                        student["agents"].append(guardian_ref)
                    links += 1


def _distinct_indices(rng: random.Random, population: int, k: int) -> set[int]:
    """k distinct indices below `population`: `random.sample` without its per-call overhead (k is small)."""
    chosen: set[int] = set()
    while len(chosen) < k:
        chosen.add(rng.randrange(population))
    return chosen
