// Which characters a channel id or a free-text field may hold.
//
// Everything a client sends is shown again: in the console, in logs, in NATS
// subjects and KV keys. Characters that are invisible or that reorder what is
// shown around them make two different ids look the same (look-alike
// rockets) or make a log line lie, and an unpaired UTF-16 surrogate cannot be
// encoded as UTF-8 at all: it would come back from the stream as U+FFFD, a
// different string, under a subject that no longer matches. So these are
// refused where the message enters, with the code point named (never the
// text itself):
// - Cc: control characters (C0, DEL, C1);
// - Cf: format characters, among them the zero-width ones (U+200B-U+200D,
//   U+FEFF), the direction marks, embeddings, overrides and isolates
//   (U+200E, U+200F, U+202A-U+202E, U+2066-U+2069) and the soft hyphen;
// - Cs: unpaired surrogates (a paired one is an ordinary character);
// - Zl, Zp: the line and paragraph separators U+2028, U+2029;
// - noncharacters (U+FDD0-U+FDEF, U+xFFFE, U+xFFFF).

const UNSAFE = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}\p{Noncharacter_Code_Point}]/u;

function codePoint(cp: number): string {
  return `U+${cp.toString(16).toUpperCase().padStart(4, "0")}`;
}

function kindOf(char: string): string {
  if (/\p{Cc}/u.test(char)) return "a control character";
  if (/\p{Cf}/u.test(char)) return "a format character (bidi control or zero-width)";
  if (/\p{Cs}/u.test(char)) return "an unpaired surrogate";
  if (/[\p{Zl}\p{Zp}]/u.test(char)) return "a line or paragraph separator";
  return "a noncharacter";
}

/** Why `text` holds a character it may not, or undefined when it holds none. */
export function checkCharacters(text: string): string | undefined {
  const m = UNSAFE.exec(text);
  if (m === null) return undefined;
  const char = m[0];
  return `must not contain control, format (bidi, zero-width) or unpaired surrogate characters: found ${kindOf(char)}, ${codePoint(char.codePointAt(0)!)}, at index ${m.index}`;
}
