package bench

import (
	"reflect"
	"testing"
	"time"

	"github.com/whistle-dispatch/whistle/services/internal/catalog"
)

func TestTheShortDeadlineCatalogIsTheSampleCityWithOneReportInLimitChanged(t *testing.T) {
	path, err := writeShortDeadlineCatalog(t.TempDir(), deadlineCategory, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got, err := catalog.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	sample, err := catalog.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Areas(), sample.Areas()) {
		t.Errorf("the copy's areas are\n%+v\nthe sample's\n%+v", got.Areas(), sample.Areas())
	}
	if !reflect.DeepEqual(got.Departments(), sample.Departments()) {
		t.Errorf("the copy's departments are\n%+v\nthe sample's\n%+v", got.Departments(), sample.Departments())
	}
	gotCats, wantCats := got.Categories(), sample.Categories()
	if len(gotCats) != len(wantCats) {
		t.Fatalf("the copy has %d categories, the sample %d", len(gotCats), len(wantCats))
	}
	for i, want := range wantCats {
		if want.ID == deadlineCategory {
			// a policy of its own, without reminders or a chain: the phase times breaches alone
			want.Normal = catalog.Policy{Name: "bench-short", ReportIn: 3 * time.Second, Resolve: want.Normal.Resolve}
		}
		if !reflect.DeepEqual(gotCats[i], want) {
			t.Errorf("category %d is %+v in the copy, want %+v", i, gotCats[i], want)
		}
	}
}
