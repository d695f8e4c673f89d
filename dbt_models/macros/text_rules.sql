{#- The same text rules as DuckDB's, or no build (D169).

    DuckDB compares text byte by byte (UTF-8) and lowercases every alphabet. The models rely on
    both: ties are broken and lists ordered by text (`_source_file`), e-mails and words are
    lowercased (Cyrillic ones too). A PostgreSQL database compares and lowercases by its
    collation and ctype: under `ru_RU.UTF-8` or ICU `a` sorts before `B`, and under the `C` ctype
    lower('ДА') is 'ДА', so the same inbox would give other numbers than on DuckDB. The hook
    tests the behaviour (not the locale's name) and stops the run with what to do. Nothing to
    check on DuckDB. -#}
{% macro check_text_rules() -%}
    {{ return(adapter.dispatch('check_text_rules', 'voronka')()) }}
{%- endmacro %}

{% macro duckdb__check_text_rules() -%}
{%- endmacro %}

{% macro postgres__check_text_rules() -%}
    {%- if execute -%}
        {%- set found = run_query(
            "select lower('ДЁЖ') = 'дёж' and upper('дёж') = 'ДЁЖ', "
            ~ "'B' < 'a' and 'Ё' < 'А' and 'Я' < 'а', "
            ~ "current_database(), datcollate, datctype "
            ~ "from pg_database where datname = current_database()"
        ).rows[0] -%}
        {%- if not (found[0] and found[1]) -%}
            {{ exceptions.raise_compiler_error(
                "PostgreSQL database " ~ found[2] ~ " (LC_COLLATE " ~ found[3] ~ ", LC_CTYPE "
                ~ found[4] ~ ") " ~ ("does not lowercase Cyrillic" if not found[0] else "does not sort text byte by byte")
                ~ ": Voronka needs the text rules of DuckDB for the same numbers on both engines (D169). "
                ~ "Create its database with: CREATE DATABASE " ~ found[2]
                ~ " TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER libc LC_COLLATE 'C' LC_CTYPE 'C.UTF-8'"
            ) }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
