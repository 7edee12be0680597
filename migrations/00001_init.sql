-- +goose Up
CREATE TABLE students (
    id            uuid        PRIMARY KEY,
    email         text        NOT NULL,
    name          text        NOT NULL,
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- Emails are compared case-insensitively.
CREATE UNIQUE INDEX students_email_key ON students (lower(email));

-- Bearer tokens, stored only as their SHA-256.
CREATE TABLE tokens (
    token_hash bytea       PRIMARY KEY,
    student_id uuid        NOT NULL REFERENCES students (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX tokens_student_idx ON tokens (student_id);

CREATE TABLE courses (
    id          uuid    PRIMARY KEY,
    slug        text    NOT NULL UNIQUE,
    title       text    NOT NULL,
    description text    NOT NULL,
    position    integer NOT NULL
);

CREATE TABLE quizzes (
    id        uuid    PRIMARY KEY,
    course_id uuid    NOT NULL REFERENCES courses (id) ON DELETE CASCADE,
    title     text    NOT NULL,
    position  integer NOT NULL
);
CREATE INDEX quizzes_course_idx ON quizzes (course_id, position);

CREATE TABLE questions (
    id       uuid    PRIMARY KEY,
    quiz_id  uuid    NOT NULL REFERENCES quizzes (id) ON DELETE CASCADE,
    prompt   text    NOT NULL,
    position integer NOT NULL
);
CREATE INDEX questions_quiz_idx ON questions (quiz_id, position);

CREATE TABLE choices (
    id          uuid    PRIMARY KEY,
    question_id uuid    NOT NULL REFERENCES questions (id) ON DELETE CASCADE,
    text        text    NOT NULL,
    correct     boolean NOT NULL,
    position    integer NOT NULL
);
CREATE INDEX choices_question_idx ON choices (question_id, position);

-- A projection of the AttemptSubmitted events. No foreign keys: the stream
-- is the system of record, and a replay must be able to rebuild these rows
-- whatever the order in which accounts and content are restored.
CREATE TABLE attempts (
    id              uuid        PRIMARY KEY,
    student_id      uuid        NOT NULL,
    quiz_id         uuid        NOT NULL,
    course_id       uuid        NOT NULL,
    idempotency_key text,
    answers         jsonb       NOT NULL,
    answers_hash    bytea       NOT NULL,
    score           integer     NOT NULL CHECK (score >= 0 AND score <= max_score),
    max_score       integer     NOT NULL CHECK (max_score >= 0),
    status          text        NOT NULL DEFAULT 'recorded' CHECK (status IN ('recorded', 'failed')),
    submitted_at    timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    stream_seq      bigint      NOT NULL
);
-- Serves GET /attempts: a student's attempts, newest first, keyset paged.
CREATE INDEX attempts_student_submitted_idx ON attempts (student_id, submitted_at DESC, id DESC);
CREATE INDEX attempts_student_quiz_submitted_idx ON attempts (student_id, quiz_id, submitted_at DESC, id DESC);

-- One row per (student, quiz), maintained by the worker from the attempts it
-- actually inserted; counts and maxima only, so order does not matter.
CREATE TABLE progress (
    student_id uuid    NOT NULL,
    quiz_id    uuid    NOT NULL,
    course_id  uuid    NOT NULL,
    attempts   integer NOT NULL,
    best_score integer NOT NULL,
    PRIMARY KEY (student_id, quiz_id)
);

-- +goose Down
DROP TABLE progress;
DROP TABLE attempts;
DROP TABLE choices;
DROP TABLE questions;
DROP TABLE quizzes;
DROP TABLE courses;
DROP TABLE tokens;
DROP TABLE students;
