import java.text.ParsePosition;
import java.text.DateFormatSymbols;
import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeFormatterBuilder;
import java.time.temporal.TemporalAccessor;
import java.time.temporal.TemporalQueries;
import java.util.Locale;
import java.util.TreeSet;

/**
 * Writes the rows of rust/time/zone_names.tsv: every zone id, every English name java.time
 * prints for a zone (short, long, generic; winter and summer) and every name of the locale's
 * zone-name table, with the zone `z`, `zzzz` and `VV` each read it as ("-": not read). Offsets
 * are left out (anomalyd reads them by rule).
 *
 *     javac ZoneNames.java && java -Djava.locale.providers=CLDR -Duser.language=en ZoneNames \
 *       | grep -vP '^(GMT|UTC|UT)?[+-]'
 *
 * (Elasticsearch 8.19 and 9 run with CLDR locale data; the table was made with OpenJDK 17.)
 */
public class ZoneNames {
    static String read(String pattern, String text) {
        try {
            DateTimeFormatter f = new DateTimeFormatterBuilder().parseLenient().appendPattern(pattern).toFormatter();
            ParsePosition pos = new ParsePosition(0);
            TemporalAccessor parsed = f.parseUnresolved(text, pos);
            if (parsed == null || pos.getErrorIndex() >= 0 || pos.getIndex() != text.length()) {
                return "-";
            }
            ZoneId zone = parsed.query(TemporalQueries.zoneId());
            return zone == null ? "-" : zone.getId();
        } catch (RuntimeException e) {
            return "-";
        }
    }

    public static void main(String[] args) {
        TreeSet<String> texts = new TreeSet<>(ZoneId.getAvailableZoneIds());
        Instant[] seasons = {Instant.parse("2026-01-15T12:00:00Z"), Instant.parse("2026-07-15T12:00:00Z")};
        for (String id : ZoneId.getAvailableZoneIds()) {
            for (Instant at : seasons) {
                for (String p : new String[] {"z", "zzzz", "v", "vvvv"}) {
                    texts.add(DateTimeFormatter.ofPattern(p, Locale.ENGLISH).format(at.atZone(ZoneId.of(id))));
                }
            }
        }
        for (String[] names : DateFormatSymbols.getInstance(Locale.ENGLISH).getZoneStrings()) {
            for (String name : names) {
                texts.add(name);
            }
        }
        for (String t : texts) {
            String s = read("z", t), l = read("zzzz", t), v = read("VV", t);
            if (!(s.equals("-") && l.equals("-") && v.equals("-"))) {
                System.out.println(t + "\t" + s + "\t" + l + "\t" + v);
            }
        }
    }
}
