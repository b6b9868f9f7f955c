// Writes the SMILE test vectors of tests/test_smile.py with Jackson (what Elasticsearch reads
// SMILE with), and what Jackson reads back from them, so the tests hold an independent oracle.
//
//   java -cp /usr/share/java/jackson-core.jar:/usr/share/java/jackson-dataformat-smile.jar \
//       tests/smile/Gen.java tests/smile/cases.json tests/smile/vectors
//
// Debian: openjdk-17-jre-headless libjackson2-dataformat-smile. For each case of cases.json,
// writes <name>.smile (the body) and <name>.json: the token stream Elasticsearch sees, one root
// value per line, every scalar as Jackson's getText() (binary as base64), strings JSON-escaped.
import com.fasterxml.jackson.core.*;
import com.fasterxml.jackson.dataformat.smile.*;
import java.io.*;
import java.math.*;
import java.nio.file.*;
import java.util.*;

public class Gen {
    public static void main(String[] args) throws Exception {
        JsonFactory json = new JsonFactory();
        JsonParser cases = json.createParser(new File(args[0]));
        Path outDir = Paths.get(args[1]);
        Files.createDirectories(outDir);
        cases.nextToken(); // [
        while (cases.nextToken() == JsonToken.START_OBJECT) {
            String name = null, numbers = "as-is";
            boolean sharedNames = true, sharedValues = false, rawBinary = false, separate = false, endMarker = true;
            List<String> docs = new ArrayList<>();
            while (cases.nextToken() == JsonToken.FIELD_NAME) {
                String f = cases.getCurrentName();
                cases.nextToken();
                switch (f) {
                    case "name": name = cases.getText(); break;
                    case "numbers": numbers = cases.getText(); break;
                    case "shared_names": sharedNames = cases.getBooleanValue(); break;
                    case "shared_values": sharedValues = cases.getBooleanValue(); break;
                    case "raw_binary": rawBinary = cases.getBooleanValue(); break;
                    case "separate": separate = cases.getBooleanValue(); break;
                    case "end_marker": endMarker = cases.getBooleanValue(); break;
                    case "docs":
                        while (cases.nextToken() != JsonToken.END_ARRAY) docs.add(cases.getText());
                        break;
                    default: throw new IllegalArgumentException(f);
                }
            }
            SmileFactory smile = new SmileFactory();
            smile.configure(SmileGenerator.Feature.CHECK_SHARED_NAMES, sharedNames);
            smile.configure(SmileGenerator.Feature.CHECK_SHARED_STRING_VALUES, sharedValues);
            smile.configure(SmileGenerator.Feature.ENCODE_BINARY_AS_7BIT, !rawBinary);
            smile.configure(SmileGenerator.Feature.WRITE_END_MARKER, endMarker && !separate);
            ByteArrayOutputStream body = new ByteArrayOutputStream();
            if (separate) {
                for (String doc : docs) { // as the Java test runner joins several bodies
                    write(json, smile, doc, numbers, body);
                    body.write(0xFF);
                }
            } else {
                ByteArrayOutputStream all = new ByteArrayOutputStream();
                SmileGenerator g = smile.createGenerator(all);
                for (String doc : docs) copy(json.createParser(doc), g, numbers);
                g.close();
                body.write(all.toByteArray());
            }
            byte[] bytes = body.toByteArray();
            Files.write(outDir.resolve(name + ".smile"), bytes);
            Files.write(outDir.resolve(name + ".json"), read(smile, bytes).getBytes("UTF-8"));
        }
    }

    static void write(JsonFactory json, SmileFactory smile, String doc, String numbers, OutputStream out) throws IOException {
        ByteArrayOutputStream one = new ByteArrayOutputStream();
        SmileGenerator g = smile.createGenerator(one);
        copy(json.createParser(doc), g, numbers);
        g.close();
        out.write(one.toByteArray());
    }

    /** Copies a JSON document, numbers as asked: "float" (32-bit), "bigdecimal", "biginteger",
     *  "binary" (strings starting "b64:" become binary values), "not-finite" (the strings NaN,
     *  Infinity and -Infinity become doubles), else as Jackson reads them. */
    static void copy(JsonParser p, SmileGenerator g, String numbers) throws IOException {
        while (p.nextToken() != null) {
            JsonToken t = p.currentToken();
            if (t == JsonToken.VALUE_NUMBER_FLOAT && numbers.equals("float")) g.writeNumber(p.getFloatValue());
            else if (t == JsonToken.VALUE_NUMBER_FLOAT && numbers.equals("bigdecimal")) g.writeNumber(p.getDecimalValue());
            else if (t == JsonToken.VALUE_NUMBER_INT && numbers.equals("biginteger")) g.writeNumber(p.getBigIntegerValue());
            else if (t == JsonToken.VALUE_STRING && numbers.equals("not-finite") && p.getText().matches("-?(NaN|Infinity)"))
                g.writeNumber(Double.parseDouble(p.getText()));
            else if (t == JsonToken.VALUE_STRING && numbers.equals("binary") && p.getText().startsWith("b64:"))
                g.writeBinary(Base64.getDecoder().decode(p.getText().substring(4)));
            else g.copyCurrentEvent(p);
        }
    }

    /** What Elasticsearch reads: each piece up to and including a 0xFF, parsed on its own until
     *  its first end (the marker, or a second header); what follows the last 0xFF is not read. */
    static String read(SmileFactory smile, byte[] body) throws IOException {
        StringBuilder out = new StringBuilder();
        int start = 0;
        for (int i = 0; i < body.length; i++) {
            if (body[i] == (byte) 0xFF) {
                tokens(smile.createParser(Arrays.copyOfRange(body, start, i + 1)), out);
                start = i + 1;
            }
        }
        return out.toString();
    }

    static void tokens(JsonParser p, StringBuilder out) throws IOException {
        Deque<int[]> open = new ArrayDeque<>(); // per container: {is object, members so far}
        for (JsonToken t = p.nextToken(); t != null; t = p.nextToken()) {
            if (t == JsonToken.END_OBJECT || t == JsonToken.END_ARRAY) {
                open.pop();
                out.append(t == JsonToken.END_OBJECT ? '}' : ']');
            } else if (t == JsonToken.FIELD_NAME) {
                if (open.peek()[1]++ > 0) out.append(',');
                quote(p.getCurrentName(), out);
                out.append(':');
                continue;
            } else {
                int[] top = open.peek();
                if (top != null && top[0] == 0 && top[1]++ > 0) out.append(',');
                switch (t) {
                    case START_OBJECT: out.append('{'); open.push(new int[] {1, 0}); break;
                    case START_ARRAY: out.append('['); open.push(new int[] {0, 0}); break;
                    case VALUE_STRING: quote(p.getText(), out); break;
                    // Binary has no text in this Jackson; anomalyd reads it as base64.
                    case VALUE_EMBEDDED_OBJECT: quote(Base64.getEncoder().encodeToString(p.getBinaryValue()), out); break;
                    default: out.append(p.getText());
                }
            }
            if (open.isEmpty()) out.append('\n');
        }
    }

    static void quote(String s, StringBuilder out) {
        out.append('"');
        for (char c : s.toCharArray()) {
            if (c == '"') out.append("\\\"");
            else if (c == '\\') out.append("\\\\");
            else if (c < 0x20) out.append(String.format("\\u%04x", (int) c));
            else out.append(c);
        }
        out.append('"');
    }
}
