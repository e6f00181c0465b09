package shop;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class PricingTest {
    @Test
    void addsTax() {
        assertEquals(120, Pricing.withTax(100, 20));
    }
}
