import { describe, expect, it } from "vitest";
import { checkCharacters } from "./text.js";

describe("checkCharacters", () => {
  it.each(["Falcon-9", "ARTEMIS", "Mission 🚀 à la Lune", "ракета", "火箭", "a\u00e9b", ""])("accepts %j", (text) => {
    expect(checkCharacters(text)).toBeUndefined();
  });

  it.each([
    ["\u0000", "a control character, U+0000"],
    ["\u007f", "a control character, U+007F"],
    ["\u0085", "a control character, U+0085"],
    ["\u200b", "a format character (bidi control or zero-width), U+200B"],
    ["\u200e", "a format character (bidi control or zero-width), U+200E"],
    ["\u202a", "a format character (bidi control or zero-width), U+202A"],
    ["\u2069", "a format character (bidi control or zero-width), U+2069"],
    ["\ufeff", "a format character (bidi control or zero-width), U+FEFF"],
    ["\ud800", "an unpaired surrogate, U+D800"],
    ["\udfff", "an unpaired surrogate, U+DFFF"],
    ["\u2029", "a line or paragraph separator, U+2029"],
    ["\ufdd0", "a noncharacter, U+FDD0"],
  ])("refuses %j, naming its kind and code point", (char, what) => {
    expect(checkCharacters(`ab${char}cd`)).toContain(`found ${what}, at index 2`);
  });

  it("sees an unpaired surrogate after a paired one", () => {
    expect(checkCharacters("🚀\ud83d")).toContain("U+D83D, at index 2");
  });
});
