import { formatPrice } from "./format.js";

test("formats cents", () => {
  expect(formatPrice(150)).toBe("$1.50");
});
