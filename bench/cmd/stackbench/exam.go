package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/quizstream/quizstream/bench/load"
	"github.com/quizstream/quizstream/store"
)

// Run names of the exam workload and the floor.
const (
	runExamMany = "exam, many addresses"
	runExamOne  = "exam, one address"
	runFloor    = "floor"
)

// floorPath is what the floor's load GETs (the floor answers any path).
const floorPath = "/api/v1/floor"

// startFloor starts the floor server (bench/cmd/floor) and returns its
// tiers and URL.
func (b *bench) startFloor(ctx context.Context) (*proc, string, error) {
	listen, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	p, err := start(b.tmp, "floor", b.bins["floor"], nil, "-listen-addr", listen)
	if err != nil {
		return nil, "", err
	}
	url := "http://" + listen
	if err := waitReady(ctx, p, url+"/readyz"); err != nil {
		_ = p.stop()
		return nil, "", err
	}
	return p, url, nil
}

// runFloorLoad drives the floor like the closed-loop mix (same students,
// warm-up and window) and keeps it as the report's floor.
func (b *bench) runFloorLoad(ctx context.Context) {
	p, url, err := b.startFloor(ctx)
	if err != nil {
		b.rep.Floor = &runRecord{Design: runFloor, Kind: runFloor, Error: err.Error()}
		b.say("floor: %v", err)
		return
	}
	defer func() {
		if err := p.stop(); err != nil {
			b.say("floor: %v", err)
		}
	}()
	t := tiers{pids: map[string]int{tierAPI: p.pid()}, rss: []string{tierAPI}}
	cfg := load.Config{URL: url, Users: b.o.Users, WarmUp: b.o.WarmUp, Duration: b.o.MixDuration, Floor: floorPath}
	rec := b.measure(ctx, runFloor, runFloor, cfg, t)
	b.rep.Floor = &rec
}

// examAPI replaces the design's api process with one for the exam, whose
// content snapshot has the demo's sprint last ExamLimit with ExamGrace.
// Its per-address limits are the defaults a site runs with: a hall behind
// one address must get in through them, and the 429s and 503s the
// students meet are counted and held against the target.
func (b *bench) examAPI(ctx context.Context, d *design) error {
	conn, err := pgx.Connect(ctx, d.dbURL)
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, `UPDATE quizzes SET time_limit_s = $1, grace_s = $2, max_sessions = NULL WHERE id = $3`,
		int(b.o.ExamLimit.Seconds()), int(b.o.ExamGrace.Seconds()), store.DemoSprintID)
	conn.Close(ctx)
	if err != nil {
		return fmt.Errorf("set the sprint's time limit: %w", err)
	}
	for i, p := range d.procs {
		if p.name != "api" {
			continue
		}
		if err := p.stop(); err != nil {
			d.result.Notes = append(d.result.Notes, fmt.Sprintf("api (before the exam): %v", err))
		}
		d.procs = append(d.procs[:i], d.procs[i+1:]...)
		break
	}
	listen, err := freeAddr()
	if err != nil {
		return err
	}
	ops, err := freeAddr()
	if err != nil {
		return err
	}
	env := append([]string(nil), "DATABASE_URL="+d.dbURL, "NATS_URL="+b.nats.url, "LOG_LEVEL=warn",
		"ATTEMPT_RATE=-1", "LISTEN_ADDR="+listen, "METRICS_ADDR="+ops)
	b.say("restarting quizstream api for the exam: sprint of %s + %s grace", b.o.ExamLimit, b.o.ExamGrace)
	p, err := start(b.tmp, "api-exam", b.bins["quizstream"], env, "api")
	if err != nil {
		return err
	}
	d.procs = append(d.procs, p)
	d.url = "http://" + listen
	if err := waitReady(ctx, p, d.url+"/readyz"); err != nil {
		return err
	}
	d.tiers.pids[tierAPI] = p.pid()
	d.tiers.metrics = "http://" + ops + "/metrics"
	return nil
}

// runExams runs the exam workload on d, from many addresses and from one.
func (b *bench) runExams(ctx context.Context, d *design) {
	if err := b.examAPI(ctx, d); err != nil {
		d.result.Notes = append(d.result.Notes, "exam: "+err.Error())
		b.say("exam: %v", err)
		return
	}
	quiz := store.DemoSprintID.String()
	for _, kind := range []string{runExamMany, runExamOne} {
		if ctx.Err() != nil {
			return
		}
		cfg := load.Config{
			URL: d.url, Users: b.o.ExamUsers, SingleAddr: kind == runExamOne, VerifyTimeout: 5 * time.Minute,
			Exam: &load.ExamConfig{QuizID: quiz, LoginSpread: b.o.ExamLoginSpread, SubmitWindow: b.o.ExamSubmitWindow, Key: demoKey(store.DemoSprintID)},
		}
		d.result.Runs = append(d.result.Runs, b.measureExam(ctx, d.name, kind, cfg, d.tiers))
	}
}

// measureExam runs one exam workload, sampling the tiers as the logins
// begin, as the exam begins and once it ended: CPU is the whole (logins
// and exam), LoginCPU the logins alone.
func (b *bench) measureExam(ctx context.Context, design, kind string, cfg load.Config, t tiers) runRecord {
	rec := runRecord{Design: design, Kind: kind, Users: cfg.Users}
	label := design + " " + kind
	b.say("%s: %d students, logins over %s, sprint of %s", label, cfg.Users, cfg.Exam.LoginSpread, b.o.ExamLimit)
	rec.PeakRSSReset = true
	for _, name := range t.rss {
		rec.PeakRSSReset = resetPeakRSS(t.pids[name]) && rec.PeakRSSReset
	}
	var mu sync.Mutex
	var login, exam, end *sample
	cfg.OnPhase = func(phase string) {
		mu.Lock()
		defer mu.Unlock()
		s := t.sample()
		switch {
		case phase == "login" && login == nil:
			login = &s
			_, _, _, rec.LoadAvgBefore = machineCPU()
		case phase == "exam" && login != nil && exam == nil:
			exam = &s
		case phase == "finish" && exam != nil && end == nil:
			end = &s
			_, _, _, rec.LoadAvgAfter = machineCPU()
		}
	}
	cfg.Progress = func(p load.Progress) { b.say("[%s] %s", label, p) }
	pubBefore := scrape(t.metrics, publishMetrics...)
	res, err := load.Run(ctx, cfg)
	rec.Publish = publishingBetween(pubBefore, scrape(t.metrics, publishMetrics...))
	if err != nil {
		rec.Error = err.Error()
		b.say("%s: %v", label, err)
		return rec
	}
	rec.Result = &res
	mu.Lock()
	if login != nil && exam != nil && end != nil {
		rec.CPU = cpuBetween(*login, *end)
		rec.LoginCPU = cpuBetween(*login, *exam)
		rec.Disk = diskBetween(login.disk, end.disk, end.at.Sub(login.at))
	}
	mu.Unlock()
	rec.PeakRSSKiB = map[string]int64{}
	for _, name := range t.rss {
		rec.PeakRSSKiB[name] = peakRSS(t.pids[name])
	}
	b.printTable(res)
	return rec
}

// demoKey returns the answer key (question id -> correct choice id) of a
// quiz of the demo content `quizstream seed` loads, for the exam's check;
// nil when quiz is none of the demo's. The demo's ids are the same on
// every database.
func demoKey(quiz uuid.UUID) map[string]string {
	for _, c := range store.DemoContent(store.DefaultDemo) {
		for _, q := range c.Quizzes {
			if q.ID != quiz {
				continue
			}
			key := map[string]string{}
			for _, qu := range q.Questions {
				for _, ch := range qu.Choices {
					if ch.Correct {
						key[qu.ID.String()] = ch.ID.String()
					}
				}
			}
			return key
		}
	}
	return nil
}
