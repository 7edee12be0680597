-- +goose Up
-- Code checks (API v1.1, "Code checks"; docs/checker.md). Exercises are
-- content, upserted by id like quizzes; their test cases (stdin, expected
-- stdout, hidden or shown) are one JSON list, read and written whole.
CREATE TABLE exercises (
    id        uuid    PRIMARY KEY,
    course_id uuid    NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    title     text    NOT NULL,
    statement text    NOT NULL,
    languages jsonb   NOT NULL,
    tests     jsonb   NOT NULL,
    position  integer NOT NULL
);
CREATE INDEX exercises_course_idx ON exercises (course_id, position);

-- The projection of the CHECKS stream: one row per check, written from
-- CodeCheckRequested (queued), CodeCheckStarted (running) and
-- CodeCheckCompleted (final), in any order. No foreign keys, as for
-- attempts: a replay rebuilds it.
CREATE TABLE checks (
    id              uuid        PRIMARY KEY,
    student_id      uuid        NOT NULL,
    exercise_id     uuid        NOT NULL,
    course_id       uuid        NOT NULL,
    language        text        NOT NULL,
    source_hash     text        NOT NULL,
    idempotency_key text,
    status          text        NOT NULL CHECK (status IN ('queued', 'running', 'passed', 'failed', 'error')),
    submitted_at    timestamptz NOT NULL,
    started_at      timestamptz,
    finished_at     timestamptz,
    tests           jsonb       NOT NULL DEFAULT '[]',
    output          text        NOT NULL DEFAULT '',
    stream_seq      bigint      NOT NULL
);
-- Serves GET /checks: a student's checks, newest first, of one exercise or all.
CREATE INDEX checks_student_submitted_idx ON checks (student_id, submitted_at DESC, id DESC);
CREATE INDEX checks_student_exercise_idx ON checks (student_id, exercise_id, submitted_at DESC, id DESC);

-- Progress of exercises: the exercises a student passed, one row each,
-- inserted with the first passed check.
CREATE TABLE exercise_passes (
    student_id  uuid        NOT NULL,
    exercise_id uuid        NOT NULL,
    course_id   uuid        NOT NULL,
    check_id    uuid        NOT NULL,
    passed_at   timestamptz NOT NULL,
    PRIMARY KEY (student_id, exercise_id)
);

-- +goose Down
DROP TABLE exercise_passes;
DROP TABLE checks;
DROP TABLE exercises;
