package systemtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/whistle-dispatch/whistle/pkg/authx"
	"github.com/whistle-dispatch/whistle/pkg/clock"
	whistlev1 "github.com/whistle-dispatch/whistle/proto/gen/whistle/v1"
)

func TestTheDeskAndReturnsRefuseWhatTheyMayNotDoAndWriteNothing(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(rules, cityRules(t, "desk"), 0o600); err != nil {
		t.Fatal(err)
	}
	sys := Start(t, t.TempDir(), clock.Real(), WithRules(rules))
	super := Dial(t, sys, Supervisor())
	worker := Dial(t, sys, GridWorker("xinhua-taoyuan-01"))
	waiting := raise(t, worker, "desk-waiting", "xinhua-taoyuan-01", "other").GetId()
	drain := raise(t, worker, "desk-drain", "xinhua-taoyuan-01", "blocked-drain").GetId()
	waitForStatus(t, super, []string{waiting}, whistlev1.IssueStatus_ISSUE_STATUS_AWAITING_DISPATCH)
	waitForStatus(t, super, []string{drain}, whistlev1.IssueStatus_ISSUE_STATUS_DISPATCHED)
	water := Dial(t, sys, Officer("water"))
	for _, unit := range []string{"water", "urban-management-xinhua"} {
		officer := Dial(t, sys, Officer(unit))
		if _, err := officer.Department.Acknowledge(t.Context(), &whistlev1.AcknowledgeRequest{IssueId: drain}); err != nil {
			t.Fatal(err)
		}
		if _, err := officer.Department.Resolve(t.Context(), &whistlev1.ResolveRequest{IssueId: drain, Note: "cleared"}); err != nil {
			t.Fatal(err)
		}
	}
	Settle(t, sys)

	city := Dial(t, sys, authx.Principal{Subject: "d@city", Role: authx.RoleDispatcher, Scope: "city"})
	hexi := Dial(t, sys, authx.Principal{Subject: "d@hexi", Role: authx.RoleDispatcher, Scope: "hexi"})
	before := StreamMessages(t, sys)
	for _, tc := range []struct {
		name string
		call func() error
		code codes.Code
		says string
	}{
		{"a return by a unit not summoned", func() error {
			_, err := Dial(t, sys, Officer("power")).Department.ReturnAssignment(t.Context(), &whistlev1.ReturnAssignmentRequest{IssueId: drain, Reason: "x"})
			return err
		}, codes.NotFound, "power"},
		{"a return for another unit", func() error {
			_, err := water.Department.ReturnAssignment(t.Context(), &whistlev1.ReturnAssignmentRequest{IssueId: drain, UnitId: "urban-management-xinhua", Reason: "x"})
			return err
		}, codes.PermissionDenied, "urban-management-xinhua"},
		{"a return without a reason", func() error {
			_, err := water.Department.ReturnAssignment(t.Context(), &whistlev1.ReturnAssignmentRequest{IssueId: drain, Reason: " "})
			return err
		}, codes.InvalidArgument, "reason"},
		{"a return of a resolved part", func() error {
			_, err := water.Department.ReturnAssignment(t.Context(), &whistlev1.ReturnAssignmentRequest{IssueId: drain, Reason: "not ours"})
			return err
		}, codes.FailedPrecondition, "resolved"},
		{"the desk listed by an officer", func() error {
			_, err := water.Routing.ListDesk(t.Context(), &whistlev1.ListDeskRequest{})
			return err
		}, codes.PermissionDenied, "desk"},
		{"the desk of an area outside the scope", func() error {
			_, err := hexi.Routing.ListDesk(t.Context(), &whistlev1.ListDeskRequest{AreaId: "xinhua"})
			return err
		}, codes.PermissionDenied, "xinhua"},
		{"a dispatch of another street's issue", func() error {
			_, err := hexi.Routing.DispatchIssue(t.Context(), &whistlev1.DispatchIssueRequest{IssueId: waiting, Lead: "water"})
			return err
		}, codes.NotFound, waiting},
		{"a dispatch to an unknown department", func() error {
			_, err := city.Routing.DispatchIssue(t.Context(), &whistlev1.DispatchIssueRequest{IssueId: waiting, Lead: "police"})
			return err
		}, codes.InvalidArgument, "lead"},
		{"a dispatch to a unit of another street", func() error {
			_, err := city.Routing.DispatchIssue(t.Context(), &whistlev1.DispatchIssueRequest{IssueId: waiting, Lead: "water", Assisting: []string{"urban-management-hexi"}})
			return err
		}, codes.InvalidArgument, "assisting[0]"},
		{"a dispatch naming a department twice", func() error {
			_, err := city.Routing.DispatchIssue(t.Context(), &whistlev1.DispatchIssueRequest{IssueId: waiting, Lead: "water", Assisting: []string{"water"}})
			return err
		}, codes.InvalidArgument, "twice"},
		{"a dispatch to the desk itself", func() error {
			_, err := city.Routing.DispatchIssue(t.Context(), &whistlev1.DispatchIssueRequest{IssueId: waiting, Lead: "dispatch-desk"})
			return err
		}, codes.InvalidArgument, "dispatch-desk"},
		{"a re-assignment of an issue at the desk", func() error {
			_, err := city.Routing.ReassignIssue(t.Context(), &whistlev1.ReassignIssueRequest{IssueId: waiting, Lead: "water", Reason: "x"})
			return err
		}, codes.FailedPrecondition, "re-assign"},
		{"a re-assignment without a reason", func() error {
			_, err := city.Routing.ReassignIssue(t.Context(), &whistlev1.ReassignIssueRequest{IssueId: drain, Lead: "power"})
			return err
		}, codes.InvalidArgument, "reason"},
		{"a change to an unknown category", func() error {
			_, err := city.Routing.ChangeCategory(t.Context(), &whistlev1.ChangeCategoryRequest{IssueId: waiting, CategoryId: "ufo", Reason: "x"})
			return err
		}, codes.InvalidArgument, "category_id"},
		{"a change of a closed issue's category", func() error {
			_, err := city.Routing.ChangeCategory(t.Context(), &whistlev1.ChangeCategoryRequest{IssueId: drain, CategoryId: "noise", Reason: "x"})
			return err
		}, codes.FailedPrecondition, "no longer open"},
		{"an unlink of an issue not linked", func() error {
			_, err := city.Routing.UnlinkIssue(t.Context(), &whistlev1.UnlinkIssueRequest{IssueId: waiting, Reason: "x"})
			return err
		}, codes.FailedPrecondition, "not linked"},
		{"a dispatch by a grid worker", func() error {
			_, err := worker.Routing.DispatchIssue(t.Context(), &whistlev1.DispatchIssueRequest{IssueId: waiting, Lead: "water"})
			return err
		}, codes.PermissionDenied, "desk"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("got %v; want %s saying %q", err, tc.code, tc.says)
			}
		})
	}
	if after := StreamMessages(t, sys); after != before {
		t.Errorf("refused calls wrote %d events", after-before)
	}
	items := deskItems(t, city)
	if len(items) != 1 || items[0].GetIssueId() != waiting {
		t.Errorf("the city desk lists %v; want the one waiting issue", items)
	}
	if items := deskItems(t, hexi); len(items) != 0 {
		t.Errorf("Hexi's desk lists %v; the issue waits in Xinhua", items)
	}
}
