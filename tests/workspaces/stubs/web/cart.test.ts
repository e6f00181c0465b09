import { Cart, parseQuantity } from "./cart";

describe("parseQuantity", () => {
  it("trims spaces", () => {
    expect(parseQuantity(" 12 ")).toBe(12);
  });
});
