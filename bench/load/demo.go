package load

import "github.com/quizstream/quizstream/store"

// DemoKey returns the answer key (question id -> correct choice id) of a
// quiz of the demo content `quizstream seed` loads, for ExamConfig.Key;
// nil when quizID is none of the demo's quizzes, or "" for the demo's
// shortest timed quiz (the sprint). The demo's ids are the same on every
// database.
func DemoKey(quizID string) map[string]string {
	if quizID == "" {
		quizID = store.DemoSprintID.String()
	}
	for _, c := range store.DemoContent(store.DefaultDemo) {
		for _, q := range c.Quizzes {
			if q.ID.String() != quizID {
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
