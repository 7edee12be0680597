package content

import (
	"context"
	"fmt"

	"github.com/quizstream/quizstream/store"
)

// Result is what an import did.
type Result struct {
	// Counts are the objects in the file.
	Counts
	// RowsChanged is how many rows the import inserted or updated: 0 when
	// the database already held the file as it is.
	RowsChanged int64 `json:"rows_changed"`
	// CopySaved and Notified are set by app.ImportContent: the content
	// copy in NATS was written, and API instances were told to reload.
	CopySaved bool `json:"copy_saved"`
	Notified  bool `json:"notified"`
}

// Import validates data as a whole (Parse), then writes it in one
// transaction: every object is inserted, or updated by its id when it
// exists (moved, renamed, re-keyed); objects the file does not hold are
// left as they are. Importing the same file twice changes nothing the
// second time. It returns an *InvalidError, having written nothing, when
// the file does not validate or a course's slug belongs to another course
// in the database; otherwise the store's error, and then too nothing is
// written.
func Import(ctx context.Context, st *store.Store, data []byte) (Result, error) {
	f, err := Parse(data)
	if err != nil {
		return Result{}, err
	}
	res := Result{Counts: f.Count()}
	slugs := make([]string, len(f.Courses))
	for i, c := range f.Courses {
		slugs[i] = c.Slug
	}
	taken, err := st.CoursesBySlug(ctx, slugs)
	if err != nil {
		return res, fmt.Errorf("import content: %w", err)
	}
	c := &checker{}
	for i, course := range f.Courses {
		if id, ok := taken[course.Slug]; ok && id != course.ID {
			c.add(index("courses", i)+".slug", "%q is the slug of course %s in the database", course.Slug, id)
		}
	}
	if len(c.problems) > 0 {
		return res, &InvalidError{Problems: c.problems, More: c.more}
	}
	res.RowsChanged, err = st.SaveContent(ctx, f.Store())
	if err != nil {
		return res, fmt.Errorf("import content: %w", err)
	}
	return res, nil
}

// Export returns the content the database holds as a file (Encode), or
// the first error.
func Export(ctx context.Context, st *store.Store) ([]byte, error) {
	courses, err := st.LoadContent(ctx)
	if err != nil {
		return nil, fmt.Errorf("export content: %w", err)
	}
	return Encode(FromStore(courses))
}
