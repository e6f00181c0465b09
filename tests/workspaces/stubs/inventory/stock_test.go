package inventory

import "testing"

func TestReserve(t *testing.T) {
	s := &Stock{units: 3}
	if err := s.Reserve(2); err != nil || s.Units() != 1 {
		t.Fatalf("got %v, %d", err, s.Units())
	}
}
