-- +goose Up
-- Timed exams (API v1.1; docs/exams.md). A quiz with a time limit is
-- taken through sessions; the other settings only apply to a timed quiz.
ALTER TABLE quizzes
    ADD COLUMN time_limit_s integer     CHECK (time_limit_s > 0),
    ADD COLUMN opens_at     timestamptz,
    ADD COLUMN closes_at    timestamptz,
    ADD COLUMN max_sessions integer     CHECK (max_sessions > 0),
    -- NULL: the API's default grace (EXAM_GRACE).
    ADD COLUMN grace_s      integer     CHECK (grace_s >= 0),
    ADD CONSTRAINT quizzes_window_check CHECK (opens_at < closes_at),
    ADD CONSTRAINT quizzes_timed_check CHECK (time_limit_s IS NOT NULL OR
        (opens_at IS NULL AND closes_at IS NULL AND max_sessions IS NULL AND grace_s IS NULL));

-- Projections of the EXAMS stream (ExamStarted, AnswerSaved,
-- ExamFinalized), one table per event type so that events may be stored in
-- any order. No foreign keys, as for attempts: a replay rebuilds them.
CREATE TABLE exam_sessions (
    id              uuid        PRIMARY KEY,
    student_id      uuid        NOT NULL,
    quiz_id         uuid        NOT NULL,
    course_id       uuid        NOT NULL,
    idempotency_key text,
    number          integer     NOT NULL CHECK (number > 0),
    started_at      timestamptz NOT NULL,
    deadline        timestamptz NOT NULL CHECK (deadline >= started_at),
    grace_s         integer     NOT NULL CHECK (grace_s >= 0),
    stream_seq      bigint      NOT NULL
);
-- Serves GET /sessions: a student's sessions, newest first.
CREATE INDEX exam_sessions_student_idx ON exam_sessions (student_id, started_at DESC, id DESC);
CREATE INDEX exam_sessions_student_quiz_idx ON exam_sessions (student_id, quiz_id, started_at DESC, id DESC);

-- The save with the highest seq of each question: a save is stored only
-- over a lower seq, so the order in which saves arrive does not matter.
CREATE TABLE exam_answers (
    session_id  uuid        NOT NULL,
    question_id uuid        NOT NULL,
    choice_id   uuid,       -- NULL: the answer was cleared
    seq         bigint      NOT NULL CHECK (seq > 0),
    saved_at    timestamptz NOT NULL,
    stream_seq  bigint      NOT NULL,
    PRIMARY KEY (session_id, question_id)
);

CREATE TABLE exam_finals (
    session_id   uuid        PRIMARY KEY,
    finalized_by text        NOT NULL CHECK (finalized_by IN ('student', 'deadline')),
    attempt_id   uuid        NOT NULL,
    submitted_at timestamptz NOT NULL,
    stream_seq   bigint      NOT NULL
);

-- +goose Down
DROP TABLE exam_finals;
DROP TABLE exam_answers;
DROP TABLE exam_sessions;
ALTER TABLE quizzes
    DROP CONSTRAINT quizzes_timed_check,
    DROP CONSTRAINT quizzes_window_check,
    DROP COLUMN grace_s,
    DROP COLUMN max_sessions,
    DROP COLUMN closes_at,
    DROP COLUMN opens_at,
    DROP COLUMN time_limit_s;
