export interface Line {
  sku: string;
  quantity: number;
}

export class Cart {
  private lines: Line[] = [];

  /** Total number of units across all lines. */
  count(): number {
    // TODO
  }

  add(line: Line): void {
    this.lines.push(line);
  }
}

/**
 * Parse a quantity typed by the user ("3", " 12 ") into a positive integer.
 * Throws RangeError when the text is not a positive whole number.
 */
export function parseQuantity(text: string): number {
  throw new Error("TODO: parse the quantity");
}
