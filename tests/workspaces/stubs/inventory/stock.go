package inventory

import "errors"

// ErrShort is returned when there is not enough stock.
var ErrShort = errors.New("not enough stock")

// Stock counts the units of one product on hand.
type Stock struct {
	units int
}

// Reserve takes n units out of stock, or returns ErrShort and leaves the
// stock unchanged when fewer than n units are left.
func (s *Stock) Reserve(n int) error {
	panic("not implemented")
}

// Units reports how many units are on hand.
func (s *Stock) Units() int {
	return s.units
}
